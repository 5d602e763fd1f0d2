import Foundation
import KVCluster
import KVCore
import KVRuntime
import KVServer
import KVStorage
import KVTransport
import Logging
import Testing

/// Cluster mode through the HTTP item API: three `NodeServer`s in this process over the
/// in-memory network (what `kvd dev` runs).
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ClusterHTTPTests {
    static func startServers(_ count: Int, network: InMemoryNetwork, root: String) async throws -> [NodeServer] {
        var servers: [NodeServer] = []
        var seed: KVCluster.NodeAddress?
        for i in 0..<count {
            var s = ServerSettings()
            s.dataDirectory = root + "/n\(i)"
            s.http.port = 0
            s.resp.port = 0
            s.storage = TestCluster.storage()
            s.cluster.enabled = true
            s.cluster.nodeID = "h\(i)"
            s.cluster.rpcPort = 200 + i
            s.cluster.seeds = seed.map { [$0] } ?? []
            s.cluster.settings = TestCluster.settings()
            var logger = Logger(label: "h\(i)")
            logger.logLevel = .error
            let server = try await NodeServer.start(
                settings: s, group: TestCluster.loops, logger: logger, network: network)
            if seed == nil { seed = server.clusterNode?.rpcAddress }
            servers.append(server)
        }
        return servers
    }

    @Test func quorumFailuresAre503WithTheCountAndTheClusterIsDescribed() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvhttp-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let network = InMemoryNetwork()
        let servers = try await Self.startServers(3, network: network, root: root)
        let runs = servers.map { server in Task { await server.run() } }
        try await waitFor("convergence") {
            servers.allSatisfy { s in
                let v = s.clusterNode!.view.snapshot
                return v.ring.members.count == 3 && servers.allSatisfy { v.isUp($0.clusterNode!.id) }
            }
        }
        let port = servers[0].httpPort
        let created = try await TestHTTP.request(
            "POST", port: port, "/api/v1/item?consistency=all", body: #"{"key":"x","value":"eA=="}"#)
        #expect(created.status == 201, "\(created.body)")
        let read = try await TestHTTP.request("GET", port: servers[1].httpPort, "/api/v1/item?key=x&consistency=strong")
        #expect(read.status == 200 && read.body.contains("eA=="))
        let cluster = try await TestHTTP.request("GET", port: port, "/api/v1/cluster")
        #expect(cluster.status == 200)
        #expect(cluster.body.components(separatedBy: #""up":true"#).count - 1 == 3)
        #expect(cluster.body.contains(#""status":"normal""#) && cluster.body.contains(#""replication_factor":3"#))

        network.kill(servers[2].clusterNode!.rpcAddress.transport)
        try await waitFor("h2 down") { !servers[0].clusterNode!.view.snapshot.isUp(NodeID("h2")) }
        let refused = try await TestHTTP.request(
            "POST", port: port, "/api/v1/item?consistency=all", body: #"{"key":"y","value":"eQ=="}"#)
        #expect(refused.status == 503)
        #expect(refused.body.contains(#""code":"quorum_not_reached""#))
        #expect(refused.body.contains(#""answered":2"#) && refused.body.contains(#""needed":3"#))
        let readAll = try await TestHTTP.request("GET", port: port, "/api/v1/item?key=x&consistency=all")
        #expect(readAll.status == 503 && readAll.body.contains(#""answered":2"#))
        // Quorum still works with one replica down.
        let quorum = try await TestHTTP.request("POST", port: port, "/api/v1/item", body: #"{"key":"y","value":"eQ=="}"#)
        #expect(quorum.status == 201)

        for s in servers { s.shutdown() }
        for r in runs { await r.value }
    }
}
