import KVCore
import Testing

@testable import KVCluster

@Suite struct StreamPlanTests {
    let five = RingTests.ring(nodes: 5, tokens: 64)
    let six = RingTests.ring(nodes: 6, tokens: 64)
    let newcomer = NodeID("node-5")

    @Test func joiningNodeFetchesEachGainedRangeFromTheNodeGivingItUp() {
        let plan = StreamPlan(from: five, to: six) { _ in true }
        #expect(plan.unsourced.isEmpty)
        #expect(!plan.streams.isEmpty)
        #expect(plan.incoming(to: newcomer) == plan.streams)
        let changes = five.ownershipChanges(to: six)
        #expect(plan.streams.map(\.range) == changes.map(\.range))
        for (stream, change) in zip(plan.streams, changes) {
            #expect(stream.source == change.lost[0])
        }
        // The load is spread over the old nodes.
        #expect(Set(plan.streams.map(\.source)).count == 5)
        // Every key the newcomer now replicates is in exactly one incoming range.
        for key in RingTests.keys.prefix(2_000) where six.replicas(for: key).contains(newcomer) {
            #expect(plan.streams.filter { $0.range.contains(key.token) }.count == 1)
        }
    }

    @Test func aDownSourceIsReplacedByAnotherOldReplica() {
        let down = NodeID("node-2")
        let plan = StreamPlan(from: five, to: six) { $0 != down }
        #expect(plan.unsourced.isEmpty)
        #expect(!plan.streams.contains { $0.source == down })
        let changes = five.ownershipChanges(to: six)
        for (stream, change) in zip(plan.streams, changes) {
            #expect(change.oldReplicas.contains(stream.source))
        }
        // Nobody up: every gained range is unsourced.
        let stuck = StreamPlan(from: five, to: six) { _ in false }
        #expect(stuck.streams.isEmpty)
        #expect(stuck.unsourced.count == changes.count)
    }

    @Test func decommissionPushesEverythingTheLeaverHeld() {
        let leaver = newcomer
        let plan = StreamPlan(from: six, to: five) { _ in true }
        #expect(plan.outgoing(from: leaver) == plan.streams)
        let pushed = plan.streams.reduce(0.0) { $0 + $1.range.fractionOfRing }
        let held = six.replicatedRanges(of: leaver).reduce(0.0) { $0 + $1.fractionOfRing }
        #expect(abs(pushed - held) < 1e-9)
    }
}
