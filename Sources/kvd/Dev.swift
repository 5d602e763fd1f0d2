import ArgumentParser
import Foundation
import Glibc
import KVCluster
import KVRuntime
import KVServer
import KVTransport
import Logging

/// `kvd dev`: a whole cluster inside this process, every node with its own HTTP and
/// RESP ports on 127.0.0.1, until SIGTERM or SIGINT.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole kvd cluster in this process (one HTTP and one RESP port per node).")

    @Option(name: .long, help: "Nodes to start.")
    var nodes: Int = 5

    @Option(name: .long, help: "Node-to-node network: memory (in-process) or tcp (loopback sockets).")
    var network: String = "memory"

    @Option(name: .long, help: "HTTP port of node 0; node i listens on port + i (0: free ports).")
    var httpPort: Int = 8080

    @Option(name: .long, help: "RESP port of node 0; node i listens on port + i (0: free ports).")
    var respPort: Int = 6379

    @Option(name: .long, help: "RPC port of node 0 with --network tcp; node i uses port + i (0: free ports).")
    var rpcPort: Int = 7000

    @Option(name: .long, help: "Copies of every key (N).")
    var replicationFactor: Int = 3

    @Option(name: .long, help: "Where the nodes keep their data (node i in DIR/node<i>). Default: a new temporary folder.")
    var dataDir: String?

    @Option(name: .long, help: "Commit mode of every node: sync or periodic (fsync every second).")
    var commitMode: String = "sync"

    @Option(name: .long, help: "Log level (trace … critical).")
    var logLevel: String = "warning"

    func validate() throws {
        guard nodes >= 1 && nodes <= 64 else { throw ValidationError("--nodes must be between 1 and 64") }
        guard ["memory", "tcp"].contains(network) else { throw ValidationError("--network must be memory or tcp") }
        guard ["sync", "periodic"].contains(commitMode) else { throw ValidationError("--commit-mode must be sync or periodic") }
        guard replicationFactor >= 1 else { throw ValidationError("--replication-factor must be at least 1") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let root = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("kvd-dev-\(getpid())").path
        let group = EventLoopGroup(settings: RuntimeSettings(pinThreads: false))
        let net: any RPCNetwork = network == "tcp" ? TCPNetwork(group: group) : InMemoryNetwork()
        let request = ShutdownRequest()
        let signals = ShutdownSignals { _ in
            if request.signal() > 1 { _exit(1) }
        }
        var servers: [NodeServer] = []
        var seed: KVCluster.NodeAddress?
        for i in 0..<nodes {
            var settings = ServerSettings()
            settings.logLevel = logLevel
            settings.dataDirectory = root + "/node\(i)"
            settings.http.port = httpPort == 0 ? 0 : httpPort + i
            settings.resp.port = respPort == 0 ? 0 : respPort + i
            settings.storage.commitMode = commitMode == "sync" ? .sync : .periodic(milliseconds: 1000)
            settings.cluster.enabled = true
            settings.cluster.nodeID = "node\(i)"
            // In memory the RPC "port" is only a name; over TCP, 0 picks a free one.
            settings.cluster.rpcPort = network == "tcp" && rpcPort == 0 ? 0 : rpcPort + i
            settings.cluster.seeds = seed.map { [$0] } ?? []
            settings.cluster.settings.ring.replicationFactor = replicationFactor
            let server: NodeServer
            do throws(ServerError) {
                server = try await NodeServer.start(
                    settings: settings, group: group, logger: Logger(label: "kvd.node\(i)"), network: net)
            } catch {
                for s in servers { s.shutdown() }
                throw ValidationError("node\(i) cannot start: \(error)")
            }
            if seed == nil { seed = server.clusterNode?.rpcAddress }
            servers.append(server)
            let rpc = server.clusterNode.map { "\($0.rpcAddress)" } ?? "-"
            print("node\(i): HTTP 127.0.0.1:\(server.httpPort)  RESP 127.0.0.1:\(server.respPort ?? 0)  RPC \(rpc) (\(network))")
        }
        fflush(nil)  // stdout may be a pipe (fully buffered): show the ports now
        request.attach(servers)
        await withDiscardingTaskGroup { tasks in
            for server in servers {
                tasks.addTask {
                    await server.run()
                    // A node that was decommissioned stops alone; the others go on.
                    if let node = server.clusterNode, node.hasLeft {
                        print("\(node.id) has left the cluster and stopped")
                        fflush(nil)
                    }
                }
            }
            // "Ready" means every node's ring holds every node: before gossip has converged, a
            // write at `all` would reach only the replicas its coordinator knows of.
            let converged = await Self.waitForConvergence(of: servers, timeout: .seconds(15))
            if !converged { print("kvd dev: gossip has not converged after 15 s; rings may still be partial") }
            print("kvd dev: \(nodes) nodes, N=\(replicationFactor), data in \(root); Ctrl-C stops")
            fflush(nil)
        }
        signals.cancel()
        group.shutdown()
        if dataDir == nil { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Polls until every node sees a ring of all `servers`, each up; false after `timeout`.
    static func waitForConvergence(of servers: [NodeServer], timeout: Duration) async -> Bool {
        let nodes = servers.compactMap(\.clusterNode)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let whole = nodes.allSatisfy { node in
                let view = node.view.snapshot
                return view.ring.members.count == nodes.count && nodes.allSatisfy { view.isUp($0.id) }
            }
            if whole { return true }
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return false }
        }
        return false
    }
}
