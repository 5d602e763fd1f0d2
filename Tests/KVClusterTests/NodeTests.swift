import Foundation
import KVCluster
import KVCore
import KVStorage
import Testing

@Suite(.serialized, .timeLimit(.minutes(1)))
struct NodeTests {
    @Test func restartBumpsTheGenerationAndRejoins() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        let before = await cluster.nodes[1].gossiper.localState.generation
        _ = try await cluster.nodes[0].coordinator.write(Key("r"), value: Value("1"), consistency: .all)
        await cluster.stopNode(1)
        try await cluster.restartNode(1)
        let after = await cluster.nodes[1].gossiper.localState.generation
        #expect(after > before)
        try await cluster.waitUntilConverged()
        #expect(try await cluster.nodes[1].replica.get(Key("r"))?.value == Value("1"))
        #expect(cluster.nodes[0].view.snapshot.states[cluster.nodes[1].id]?.generation == after)
        await cluster.stop()
    }

    @Test func downReplicaWriteGoesToAStandInAsAHint() async throws {
        let cluster = try await TestCluster(count: 5)
        try await cluster.waitUntilConverged()
        let ring = cluster.nodes[0].view.snapshot.ring
        // A key whose replicas exclude n0, so n0 coordinates remotely.
        let key = (0..<1000).lazy.map { Key("s\($0)") }.first { !ring.replicas(for: $0).contains(NodeID("n0")) }!
        let replicas = ring.replicas(for: key)
        let down = cluster.nodes.firstIndex { $0.id == replicas[2] }!
        cluster.network.kill(cluster.address(down))
        try await waitFor("replica down") { !cluster.nodes[0].view.snapshot.isUp(replicas[2]) }
        let standIn = cluster.nodes[0].view.snapshot.ring
            .writeTargets(for: key.token, isUp: cluster.nodes[0].view.snapshot.isUp).first { $0.hintFor != nil }!.node
        _ = try await cluster.nodes[0].coordinator.write(key, value: Value("x"), consistency: .quorum)
        let standInNode = cluster.nodes.first { $0.id == standIn }!
        try await waitFor("stand-in holds the hint") { await standInNode.hints.queued[replicas[2]] == 1 }
        // The stand-in does not hold the key as data.
        #expect(try await standInNode.replica.get(key) == nil)
        cluster.network.revive(cluster.address(down))
        try await waitFor("hint handed over") { try await cluster.nodes[down].replica.get(key)?.value == Value("x") }
        await cluster.stop()
    }

    @Test func vnodeRangeTreesMatchAcrossReplicas() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        for i in 0..<50 { _ = try await cluster.nodes[i % 3].coordinator.write(Key("m\(i)"), value: Value("\(i)"), consistency: .all) }
        // With three nodes and N = 3 every node replicates the whole ring.
        let range = TokenRange.fullRing
        let trees = try await [cluster.nodes[0].merkleTree(of: range), cluster.nodes[1].merkleTree(of: range)]
        #expect(trees[0].entryCount == 50)
        #expect(trees[0].rootHash == trees[1].rootHash)
        // A change on one replica shows up as a differing leaf.
        try await cluster.nodes[1].replica.apply([Entry(key: Key("m1"), record: .tombstone(at: Timestamp(rawValue: .max >> 1)))])
        let changed = try await cluster.nodes[1].merkleTree(of: range)
        #expect(try trees[0].differingRanges(from: changed).count == 1)
        await cluster.stop()
    }
}
