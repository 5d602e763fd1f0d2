import Foundation
import KVCluster
import KVServer
import KVTransport
import Testing

/// Decommission through `/api/v1/cluster/decommission` and `kvd decommission`, against
/// `NodeServer`s in this process over the in-memory network (what `kvd dev` runs).
@Suite(.serialized, .timeLimit(.minutes(1)))
struct DecommissionHTTPTests {
    final class Servers: @unchecked Sendable {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvdecom-\(UUID().uuidString)").path
        let network = InMemoryNetwork()
        var servers: [NodeServer] = []
        var runs: [Task<Void, Never>] = []

        init(_ count: Int) async throws {
            servers = try await ClusterHTTPTests.startServers(count, network: network, root: root)
            runs = servers.map { server in Task { await server.run() } }
            let servers = self.servers
            try await waitFor("convergence") {
                servers.allSatisfy { s in
                    let v = s.clusterNode!.view.snapshot
                    return v.ring.members.count == count && servers.allSatisfy { v.isUp($0.clusterNode!.id) }
                }
            }
        }

        func stop() async {
            for s in servers { s.shutdown() }
            for r in runs { await r.value }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    @Test func decommissionOverHTTP() async throws {
        let cluster = try await Servers(4)
        let ports = cluster.servers.map(\.httpPort)
        let created = try await TestHTTP.request(
            "POST", port: ports[1], "/api/v1/item?consistency=all", body: #"{"key":"x","value":"eA=="}"#)
        #expect(created.status == 201)

        let started = try await TestHTTP.request("POST", port: ports[3], "/api/v1/cluster/decommission")
        #expect(started.status == 202)
        #expect(started.body.contains(#""node":"h3""#) && started.body.contains(#""phase":"announcing_leaving""#))
        try await waitFor("h3 leaving") {
            try await TestHTTP.request("GET", port: ports[3], "/api/v1/cluster/decommission").body
                .contains(#""status":"leaving""#)
        }
        let h3 = cluster.servers[3].clusterNode!.id
        try await waitFor("h0 sees h3 leaving") {
            cluster.servers[0].clusterNode!.view.snapshot.states[h3]?.status == .leaving
        }
        let again = try await TestHTTP.request("POST", port: ports[3], "/api/v1/cluster/decommission")
        #expect(again.status == 409 && again.body.contains(#""code":"not_normal""#))
        let other = try await TestHTTP.request("POST", port: ports[0], "/api/v1/cluster/decommission")
        #expect(other.status == 409 && other.body.contains(#""code":"another_node_leaving""#))
        let described = try await TestHTTP.request("GET", port: ports[0], "/api/v1/cluster")
        #expect(described.body.contains(#""status":"leaving""#) && described.body.contains(#""cluster_name":"kvd""#))

        let finished = try await TestHTTP.request("GET", port: ports[3], "/api/v1/cluster/decommission?wait_ms=10000")
        #expect(finished.status == 200 && finished.body.contains(#""phase":"left""#), "\(finished.body)")
        // The node that left takes no more client requests...
        let refused = try await TestHTTP.request("GET", port: ports[3], "/api/v1/item?key=x")
        #expect(refused.status == 503 && refused.body.contains(#""code":"unavailable""#))
        // ...the others show it as left and serve its data...
        let view = try await TestHTTP.request("GET", port: ports[0], "/api/v1/cluster")
        #expect(view.body.contains(#""members":3"#) && view.body.contains(#""status":"left""#))
        let read = try await TestHTTP.request("GET", port: ports[0], "/api/v1/item?key=x&consistency=all")
        #expect(read.status == 200 && read.body.contains("eA=="))
        // ...and its server stops by itself.
        await cluster.runs[3].value
        // Three nodes at N = 3: refused.
        let tooFew = try await TestHTTP.request("POST", port: ports[0], "/api/v1/cluster/decommission")
        #expect(tooFew.status == 409 && tooFew.body.contains(#""code":"too_few_nodes""#))
        await cluster.stop()
    }

    /// Runs `kvd` with `arguments` until it exits (at most 30 s); returns its status and output.
    static func kvd(_ arguments: [String]) async throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(ClusterProcessTests.binary))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        try await waitFor("kvd \(arguments.first ?? "") to exit", timeout: .seconds(30)) { !process.isRunning }
        process.waitUntilExit()
        let text = { (pipe: Pipe) in String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        return (process.terminationStatus, text(out), text(err))
    }

    @Test func kvdDecommissionWaitsUntilTheNodeHasLeft() async throws {
        let cluster = try await Servers(4)
        let leaving = cluster.servers[2]
        let result = try await Self.kvd(["decommission", "--http", "127.0.0.1:\(leaving.httpPort)"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("h2 has left the cluster"), "\(result.out)")
        await cluster.runs[2].value
        #expect(cluster.servers[0].clusterNode!.view.snapshot.states[leaving.clusterNode!.id]?.status == .left)

        // Refused: exit status 1 with the reason.
        let refused = try await Self.kvd(["decommission", "--http", "127.0.0.1:\(cluster.servers[0].httpPort)"])
        #expect(refused.status == 1 && refused.err.contains("too_few_nodes"), "\(refused.err)")

        // The node that left cannot start again on its data directory.
        await #expect(throws: ServerError.self) {
            _ = try await NodeServer.start(
                settings: leaving.settings, group: TestCluster.loops, logger: .init(label: "again"), network: cluster.network)
        }
        await cluster.stop()
    }
}
