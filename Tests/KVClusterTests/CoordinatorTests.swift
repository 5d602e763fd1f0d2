import Foundation
import KVCluster
import KVCore
import KVStorage
import Testing

/// Whole clusters in one process over the in-memory network.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct CoordinatorTests {
    @Test func quorumReadsSeeQuorumWrites() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        for i in 0..<30 {
            let writer = cluster.nodes[i % 3].coordinator
            let reader = cluster.nodes[(i + 1) % 3].coordinator
            let ts = try await writer.write(Key("k\(i)"), value: Value("v\(i)"), consistency: .quorum)
            let record = try await reader.read(Key("k\(i)"), consistency: .quorum)
            #expect(record?.value == Value("v\(i)"))
            #expect(record?.timestamp == ts)
        }
        // An overwrite through another coordinator wins.
        _ = try await cluster.nodes[2].coordinator.write(Key("k0"), value: Value("new"), consistency: .quorum)
        #expect(try await cluster.nodes[1].coordinator.read(Key("k0"), consistency: .quorum)?.value == Value("new"))
        await cluster.stop()
    }

    @Test func killedReplicaGetsItsHintsOnReturn() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        cluster.network.kill(cluster.address(2))
        // Writes at W=2 still succeed with one replica gone; the hints for it are kept.
        for i in 0..<20 {
            _ = try await cluster.nodes[i % 2].coordinator.write(Key("h\(i)"), value: Value("v\(i)"), consistency: .quorum)
        }
        let n2 = cluster.nodes[2].id
        try await waitFor("hints stored") {
            var total = 0
            for node in cluster.nodes.prefix(2) { total += await node.hints.queued[n2] ?? 0 }
            return total == 20
        }
        // Gossip marks it down meanwhile; the hints wait.
        try await waitFor("n2 down") { !cluster.nodes[0].view.snapshot.isUp(n2) }
        cluster.network.revive(cluster.address(2))
        try await waitFor("hints delivered") {
            var total = 0
            for node in cluster.nodes.prefix(2) { total += await node.hints.queued[n2] ?? 0 }
            return total == 0
        }
        // Every replica holds every key now.
        for i in 0..<20 {
            let a = try await cluster.nodes[0].replica.get(Key("h\(i)"))
            let c = try await cluster.nodes[2].replica.get(Key("h\(i)"))
            #expect(a != nil && a == c)
        }
        let delivered = await cluster.nodes[0].hints.counters.delivered + cluster.nodes[1].hints.counters.delivered
        #expect(delivered == 20)
        await cluster.stop()
    }

    @Test func staleReplicaIsRepairedByAStrongRead() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        let key = Key("stale")
        let old = try await cluster.nodes[0].coordinator.write(key, value: Value("old"), consistency: .all)
        // A newer version reaches two replicas only (written straight into their storage).
        let newer = Record.value(Value("new"), at: Timestamp(physicalMillis: old.physicalMillis + 1, logical: 0))
        try await cluster.nodes[1].replica.apply([Entry(key: key, record: newer)])
        try await cluster.nodes[2].replica.apply([Entry(key: key, record: newer)])
        #expect(try await cluster.nodes[0].replica.get(key)?.value == Value("old"))
        // n0 reads strong: itself (stale) plus one other; the newest wins and n0 is repaired before the reply.
        let read = try await cluster.nodes[0].coordinator.read(key, consistency: .quorum)
        #expect(read == newer)
        #expect(try await cluster.nodes[0].replica.get(key) == newer)
        #expect(cluster.nodes[0].coordinator.statistics.readRepairs >= 1)
        await cluster.stop()
    }

    @Test func allFailsCleanlyWithAReplicaDown() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        cluster.network.kill(cluster.address(2))
        try await waitFor("n2 down") { !cluster.nodes[0].view.snapshot.isUp(cluster.nodes[2].id) }
        await #expect(throws: CoordinatorError.cluster(.quorumNotReached(needed: 3, answered: 2))) {
            _ = try await cluster.nodes[0].coordinator.write(Key("a"), value: Value("1"), consistency: .all)
        }
        _ = try await cluster.nodes[0].coordinator.write(Key("a"), value: Value("1"), consistency: .quorum)
        await #expect(throws: CoordinatorError.cluster(.quorumNotReached(needed: 3, answered: 2))) {
            _ = try await cluster.nodes[1].coordinator.read(Key("a"), consistency: .all)
        }
        #expect(try await cluster.nodes[1].coordinator.read(Key("a"), consistency: .quorum)?.value == Value("1"))
        await cluster.stop()
    }

    @Test func tombstonesWinOverOlderValuesEverywhere() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        let key = Key("gone")
        _ = try await cluster.nodes[0].coordinator.write(key, value: Value("v"), consistency: .all)
        let deleted = try await cluster.nodes[1].coordinator.write(key, value: nil, consistency: .all)
        // Every replica holds the tombstone; an older value arriving late (a repair, a hint) does not resurrect it.
        let late = Record.value(Value("late"), at: Timestamp(physicalMillis: deleted.physicalMillis - 1, logical: 0))
        for node in cluster.nodes {
            try await node.replica.apply([Entry(key: key, record: late)])
            #expect(try await node.replica.get(key) == .tombstone(at: deleted))
        }
        for node in cluster.nodes {
            for level in ConsistencyLevel.allCases {
                let record = try await node.coordinator.read(key, consistency: level)
                #expect(record?.isTombstone == true)
            }
        }
        await cluster.stop()
    }

    @Test func partitionedNodeIsMarkedDownAndBackUp() async throws {
        let cluster = try await TestCluster(count: 3)
        try await cluster.waitUntilConverged()
        let n2 = cluster.nodes[2].id
        cluster.network.partition([cluster.address(2)], from: [cluster.address(0), cluster.address(1)])
        try await waitFor("n2 down on both sides") {
            !cluster.nodes[0].view.snapshot.isUp(n2) && !cluster.nodes[1].view.snapshot.isUp(n2)
                && !cluster.nodes[2].view.snapshot.isUp(cluster.nodes[0].id)
        }
        cluster.network.healAll()
        try await cluster.waitUntilConverged()
        await cluster.stop()
    }

    @Test func aNodeWithAClockFarAheadCannotWin() async throws {
        // n2's wall clock runs an hour ahead.
        let cluster = try await TestCluster(count: 3, skewMillis: [0, 0, 3_600_000])
        try await cluster.waitUntilConverged()
        let key = Key("skew")
        _ = try await cluster.nodes[0].coordinator.write(key, value: Value("first"), consistency: .all)
        // n2 coordinates a write: healthy replicas refuse its timestamp, so W=2 is not reached.
        await #expect(throws: CoordinatorError.cluster(.quorumNotReached(needed: 2, answered: 1))) {
            _ = try await cluster.nodes[2].coordinator.write(key, value: Value("future"), consistency: .quorum)
        }
        #expect(try await cluster.nodes[0].replica.get(key)?.value == Value("first"))
        #expect(try await cluster.nodes[1].replica.get(key)?.value == Value("first"))
        // A later write through a healthy node wins on every read a healthy node coordinates,
        // even when the read reaches n2's future copy (that reply is ignored, not returned).
        _ = try await cluster.nodes[1].coordinator.write(key, value: Value("later"), consistency: .quorum)
        for i in 0..<2 {
            #expect(try await cluster.nodes[i].coordinator.read(key, consistency: .quorum)?.value == Value("later"))
            // At `all` n2 must answer, and its reply is refused: the read fails rather than return "future".
            await #expect(throws: CoordinatorError.cluster(.quorumNotReached(needed: 3, answered: 2))) {
                _ = try await cluster.nodes[i].coordinator.read(key, consistency: .all)
            }
        }
        #expect(cluster.nodes[0].coordinator.statistics.skewedReplies >= 1)
        await cluster.stop()
    }
}
