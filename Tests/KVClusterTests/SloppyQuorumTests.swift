import KVCore
import Testing

@testable import KVCluster

@Suite struct SloppyQuorumTests {
    let ring = RingTests.ring(nodes: 6, tokens: 64)

    /// The first up node clockwise from `token` that is not among `excluded`: the reference walk.
    func nextHealthy(after token: Token, excluding excluded: Set<NodeID>, isUp: (NodeID) -> Bool) -> NodeID? {
        let owners = ring.members.flatMap { m in m.tokens.map { ($0, m.id) } }.sorted { $0.0 < $1.0 }
        let start = owners.firstIndex { $0.0 >= token } ?? 0
        for k in 0..<owners.count {
            let node = owners[(start + k) % owners.count].1
            if !excluded.contains(node) && isUp(node) { return node }
        }
        return nil
    }

    @Test func allUpMeansTheNaturalReplicas() {
        for key in RingTests.keys.prefix(500) {
            let targets = ring.writeTargets(for: key.token) { _ in true }
            #expect(targets == ring.replicas(for: key).map { WriteTarget(node: $0) })
        }
    }

    @Test func aDownReplicasWriteGoesToTheNextHealthyNodeAsAHint() {
        var hinted = 0
        for key in RingTests.keys.prefix(500) {
            let replicas = ring.replicas(for: key)
            let down = replicas[1]
            let isUp = { (n: NodeID) in n != down }
            let targets = ring.writeTargets(for: key.token, isUp: isUp)
            #expect(targets.count == 3)
            #expect(Set(targets.map(\.node)).count == 3)
            #expect(!targets.map(\.node).contains(down))
            let standIn = targets.filter { $0.hintFor != nil }
            #expect(standIn.count == 1)
            #expect(standIn.first?.hintFor == down)
            #expect(standIn.first?.node == nextHealthy(after: key.token, excluding: Set(replicas), isUp: isUp))
            hinted += 1
        }
        #expect(hinted == 500)
    }

    @Test func tooFewHealthyNodesLeavesHintsUnplaced() {
        // Of six nodes only two are up: some replicas' hints have no stand-in.
        let up: Set<NodeID> = [NodeID("node-0"), NodeID("node-1")]
        for key in RingTests.keys.prefix(300) {
            let targets = ring.writeTargets(for: key.token) { up.contains($0) }
            #expect(Set(targets.map(\.node)) == up)
            let replicas = ring.replicas(for: key)
            // Every natural replica that is up is written directly.
            for r in replicas where up.contains(r) { #expect(targets.contains(WriteTarget(node: r))) }
            #expect(targets.compactMap(\.hintFor).allSatisfy { !up.contains($0) && replicas.contains($0) })
        }
        let noneUp = ring.writeTargets(for: Key("k").token) { _ in false }
        #expect(noneUp.isEmpty)
    }

    @Test func readsPreferTheLocalReplicaThenLiveOnes() {
        let key = Key("user:42")
        let replicas = ring.replicas(for: key)
        let local = replicas[2]
        #expect(ring.readOrder(for: key.token, local: local) { _ in true } == [local, replicas[0], replicas[1]])
        #expect(ring.readOrder(for: key.token, local: local) { $0 != replicas[0] } == [local, replicas[1], replicas[0]])
        let outsider = ring.members.map(\.id).first { !replicas.contains($0) }!
        #expect(ring.readOrder(for: key.token, local: outsider) { _ in true } == replicas)
    }
}
