import ArgumentParser
import Glibc
import KVCluster
import KVRuntime
import KVTransport

/// `kvd decommission --http HOST:PORT`: asks a cluster node to leave its cluster (as
/// `nodetool decommission`) through `POST /api/v1/cluster/decommission`, then follows its
/// progress (`GET …?wait_ms=`) until it has left. Exit status 0 once the node has left
/// (or, with `--no-wait`, once it has started), 1 when it was refused or failed.
struct Decommission: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decommission a cluster node: it streams its data to the remaining nodes, leaves the ring and stops.")

    @Option(name: .long, help: "The node's HTTP address, HOST:PORT (an IPv4 address or localhost).")
    var http: String

    @Flag(name: .long, help: "Return once the decommission has started instead of waiting until the node has left.")
    var noWait = false

    @Option(name: .long, help: "Longest wait for the node to leave, in seconds.")
    var timeout: Int = 3600

    func validate() throws {
        guard NodeAddress(parsing: http) != nil else { throw ValidationError("--http must be HOST:PORT") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
    }

    func run() async throws {
        let address = NodeAddress(parsing: http)!
        let loop = EventLoop(settings: RuntimeSettings(loopCount: 1, pinThreads: false, preferLocalNUMANode: false))
        defer { loop.shutdown() }
        let client = AdminClient(host: address.host, port: Int(address.port), loop: loop)
        let started: AdminClient.Response
        do throws(TransportError) {
            started = try await client.request("POST", "/api/v1/cluster/decommission", timeout: .seconds(30))
        } catch {
            throw Self.failure("cannot reach \(http): \(error)")
        }
        guard started.status == 202 else {
            throw Self.failure("refused (HTTP \(started.status)): \(started.string("error") ?? "no reason given") [\(started.string("code") ?? "-")]")
        }
        let node = started.string("node") ?? http
        print("\(node): decommission started (\(started.integer("ranges_total") ?? 0) ranges to stream)")
        fflush(nil)
        if noWait { return }

        let deadline = ContinuousClock.now + .seconds(timeout)
        var lastLine = ""
        while ContinuousClock.now < deadline {
            let progress: AdminClient.Response
            do throws(TransportError) {
                progress = try await client.request("GET", "/api/v1/cluster/decommission?wait_ms=5000", timeout: .seconds(30))
            } catch {
                throw Self.failure("lost contact with \(node) before it reported the end (\(error)); last seen: \(lastLine)")
            }
            let phase = progress.string("phase") ?? "unknown"
            let line = "\(phase): ranges \(progress.integer("ranges_streamed") ?? 0)/\(progress.integer("ranges_total") ?? 0), "
                + "records \(progress.integer("records_streamed") ?? 0), hints delivered \(progress.integer("hints_delivered") ?? 0), "
                + "handed off \(progress.integer("hints_handed_off") ?? 0)"
            if line != lastLine {
                print("\(node): \(line)")
                fflush(nil)
                lastLine = line
            }
            switch phase {
            case "left":
                print("\(node) has left the cluster")
                return
            case "failed":
                throw Self.failure("decommission failed: \(progress.string("error") ?? "unknown") [\(progress.string("code") ?? "-")]")
            default:
                continue
            }
        }
        throw Self.failure("\(node) has not left after \(timeout) s; last seen: \(lastLine)")
    }

    /// Prints `message` to stderr; returns the exit status 1 to throw.
    private static func failure(_ message: String) -> ExitCode {
        let bytes = Array("kvd decommission: \(message)\n".utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        return ExitCode(1)
    }
}
