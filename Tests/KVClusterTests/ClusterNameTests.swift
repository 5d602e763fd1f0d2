import Foundation
import KVCore
import KVTransport
import Testing

@testable import KVCluster

/// `ClusterSettings.name`: gossip carries it, and nodes of different clusters never merge.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ClusterNameTests {
    @Test func gossipFromAnotherClusterIsDroppedCountedAndReportedOncePerSender() {
        // Nodes 0–1 form cluster "a" and 2–3 cluster "b"; everyone is seeded with node 0 and node 2.
        var sim = GossipSimulation(count: 4, seeds: [0, 2], seed: 7, clusterNames: ["a", "a", "b", "b"])
        for _ in 0..<40 { sim.round() }
        for i in 0..<4 {
            let mine = i < 2 ? [0, 1] : [2, 3]
            #expect(Set(sim.nodes[i].membership.states.keys) == Set(mine.map(GossipSimulation.id)))
            #expect(sim.nodes[i].isUp(GossipSimulation.id(mine[0])) && sim.nodes[i].isUp(GossipSimulation.id(mine[1])))
        }
        // The seeds heard from the other cluster every round, but reported each sender once.
        for seed in [0, 2] {
            let reports = sim.events[seed].filter { if case .foreignCluster = $0 { true } else { false } }
            #expect(reports.count == 2, "node \(seed) reported \(reports)")
            #expect(sim.nodes[seed].foreignMessages > 10)
        }
        let fromB = sim.events[0].first { if case .foreignCluster(let id, _, _) = $0 { id == GossipSimulation.id(2) } else { false } }
        #expect(fromB == .foreignCluster(from: GossipSimulation.id(2), address: GossipSimulation.address(2), clusterName: "b"))
        // Nothing about the other cluster's nodes was ever discovered.
        #expect(!sim.events[0].contains { if case .discovered(let s) = $0 { s.id.name >= "n2" } else { false } })
    }

    @Test func theSameNameMerges() {
        var sim = GossipSimulation(count: 4, seeds: [0, 2], seed: 7, clusterNames: ["a", "a", "a", "a"])
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone && $0.everyoneUp }, limit: 20) != nil)
        #expect(sim.nodes.allSatisfy { $0.foreignMessages == 0 })
    }

    @Test func theNameTravelsInEveryMessage() throws {
        let message = GossipMessage(
            clusterName: "prod-eu", from: NodeID("a"), fromAddress: NodeAddress(host: "h", port: 1), body: .syn(digests: []))
        #expect(try GossipCodec.decode(GossipCodec.encode(message)).clusterName == "prod-eu")
    }

    /// Two 2-node clusters over one in-memory network, each seeded with both clusters' first node.
    private static func twoClusters(names: (String, String)) async throws -> (TestCluster, TestCluster) {
        let network = InMemoryNetwork()
        var a = TestCluster.settings()
        a.name = names.0
        var b = TestCluster.settings()
        b.name = names.1
        let first = try await TestCluster(
            count: 2, settings: a, network: network, prefix: "a", firstPort: 100, seedPorts: [100, 300])
        let second = try await TestCluster(
            count: 2, settings: b, network: network, prefix: "b", firstPort: 300, seedPorts: [300, 100])
        return (first, second)
    }

    @Test func clustersWithDifferentNamesSeededAtEachOtherNeverMerge() async throws {
        let (a, b) = try await Self.twoClusters(names: ("alpha", "beta"))
        try await a.waitUntilConverged()
        try await b.waitUntilConverged()
        // Both seeds keep contacting each other; wait until each has dropped plenty of the other's gossip.
        try await waitFor("foreign gossip dropped") {
            let dropped = (await a.nodes[0].gossiper.foreignMessages, await b.nodes[0].gossiper.foreignMessages)
            return dropped.0 >= 10 && dropped.1 >= 10
        }
        for (cluster, other) in [(a, b), (b, a)] {
            for node in cluster.nodes {
                let view = node.view.snapshot
                #expect(Set(view.states.keys) == Set(cluster.nodes.map(\.id)))
                #expect(view.ring.members.count == 2)
                #expect(other.nodes.allSatisfy { view.states[$0.id] == nil })
            }
        }
        await a.stop()
        await b.stop()
    }

    @Test func clustersWithTheSameNameMerge() async throws {
        let (a, b) = try await Self.twoClusters(names: ("gamma", "gamma"))
        let all = a.nodes + b.nodes
        try await waitFor("one ring of four") {
            all.allSatisfy { node in
                let view = node.view.snapshot
                return view.ring.members.count == 4 && all.allSatisfy { view.isUp($0.id) }
            }
        }
        #expect(await a.nodes[0].gossiper.foreignMessages == 0)
        await a.stop()
        await b.stop()
    }
}
