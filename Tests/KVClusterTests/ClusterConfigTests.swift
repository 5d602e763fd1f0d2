import Foundation
import KVCluster
import KVServer
import Testing

/// The 3-node example configuration (`Configs/node1.toml` … `node3.toml`) and the
/// `[cluster]` table.
struct ClusterConfigTests {
    static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Configs")

    @Test func theExampleNodesFormOneClusterWithTheDocumentedDefaults() throws {
        for i in 1...3 {
            let s = try ServerSettings.load(path: Self.configs.appendingPathComponent("node\(i).toml").path)
            #expect(s.cluster.enabled)
            #expect(s.cluster.nodeID == "node\(i)")
            #expect(s.cluster.rpcPort == 7000 + i)
            #expect(s.cluster.seeds == [NodeAddress(host: "127.0.0.1", port: 7001)])
            #expect(s.http.port == 8080 + i && s.resp.port == 6379 + i)
            #expect(s.dataDirectory == "./data/node\(i)")
            // Every cluster value written in the file is the default.
            #expect(s.cluster.settings == ClusterSettings())
            #expect(s.clusterNodeSettings(shards: 1).rpcAddress == NodeAddress(host: "127.0.0.1", port: UInt16(7000 + i)))
        }
    }

    @Test func clusterTableParsesAndRejectsBadValues() throws {
        let s = try ServerSettings.parse(toml: """
            [cluster]
            enabled = true
            seeds = "10.0.0.1:7000, [::1]:7001"
            replication_factor = 5
            write_consistency = "all"
            read_consistency = "eventual"
            rack = "r1"
            name = "prod-eu"
            """)
        #expect(s.cluster.settings.name == "prod-eu")
        #expect(try ServerSettings.parse(toml: "[cluster]\nenabled = true").cluster.settings.name == "kvd")
        #expect(throws: ConfigError.self) { try ServerSettings.parse(toml: "[cluster]\nname = \"\"") }
        #expect(s.cluster.seeds == [NodeAddress(host: "10.0.0.1", port: 7000), NodeAddress(host: "::1", port: 7001)])
        #expect(s.cluster.settings.ring.replicationFactor == 5)
        #expect(s.cluster.settings.quorum.writeConsistency == .all)
        #expect(s.cluster.settings.quorum.readConsistency == .one)
        #expect(s.cluster.rack == "r1")
        #expect(throws: ConfigError.self) { try ServerSettings.parse(toml: "[cluster]\nseeds = \"nope\"") }
        #expect(throws: ConfigError.self) { try ServerSettings.parse(toml: "[cluster]\nread_consistency = \"most\"") }
        #expect(throws: ConfigError.self) { try ServerSettings.parse(toml: "[cluster]\nunknown = 1") }
    }
}
