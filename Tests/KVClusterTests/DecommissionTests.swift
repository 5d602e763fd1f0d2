import KVCore
import Testing

@testable import KVCluster

/// The pure parts of decommission: the plan and its refusals, pending replicas, the
/// write-ack rule while a node leaves, and knowing when every peer has heard.
@Suite struct DecommissionTests {
    static func states(_ count: Int, leaving: Set<Int> = [], tokens: Int = 64) -> [NodeID: EndpointState] {
        var states: [NodeID: EndpointState] = [:]
        for i in 0..<count {
            let id = NodeID("node-\(i)")
            states[id] = EndpointState(
                id: id, generation: 1, status: leaving.contains(i) ? .leaving : .normal,
                address: NodeAddress(host: "10.0.0.\(i)", port: 7000), tokens: Ring.defaultTokens(for: id, count: tokens))
        }
        return states
    }

    @Test func theLeavingNodeStreamsEverythingItReplicatedToTheNodesGainingIt() throws {
        let ring = RingTests.ring(nodes: 5, tokens: 64)
        let leaver = NodeID("node-2")
        let plan = try DecommissionPlan(leaving: leaver, ring: ring, states: Self.states(5)) { _ in true }
        #expect(plan.remaining.members.count == 4 && !plan.remaining.members.contains { $0.id == leaver })
        #expect(!plan.streams.isEmpty && plan.streams.allSatisfy { $0.source == leaver })
        let pushed = plan.streams.reduce(0.0) { $0 + $1.range.fractionOfRing }
        let held = ring.replicatedRanges(of: leaver).reduce(0.0) { $0 + $1.fractionOfRing }
        #expect(abs(pushed - held) < 1e-9)
        // Every key: the nodes that gain it are exactly the destinations of the range holding it.
        for key in RingTests.keys.prefix(2_000) {
            let gained = Set(plan.remaining.replicas(for: key)).subtracting(ring.replicas(for: key))
            let streamedTo = Set(plan.streams.filter { $0.range.contains(key.token) }.map(\.destination))
            #expect(gained == streamedTo)
        }
    }

    @Test func refusals() {
        let four = RingTests.ring(nodes: 4, tokens: 32)
        let n1 = NodeID("node-1")
        #expect(throws: DecommissionError.tooFewNodes(remaining: 2, replicationFactor: 3)) {
            try DecommissionPlan(leaving: n1, ring: RingTests.ring(nodes: 3, tokens: 32), states: Self.states(3)) { _ in true }
        }
        // The last node of a cluster.
        let alone = RingTests.ring(nodes: 1, tokens: 32, rf: 1)
        #expect(throws: DecommissionError.tooFewNodes(remaining: 0, replicationFactor: 1)) {
            try DecommissionPlan(leaving: NodeID("node-0"), ring: alone, states: Self.states(1)) { _ in true }
        }
        #expect(throws: DecommissionError.notNormal(.leaving)) {
            try DecommissionPlan(leaving: n1, ring: four, states: Self.states(4, leaving: [1])) { _ in true }
        }
        #expect(throws: DecommissionError.notNormal(.joining)) {
            try DecommissionPlan(leaving: NodeID("stranger"), ring: four, states: Self.states(4)) { _ in true }
        }
        #expect(throws: DecommissionError.anotherNodeLeaving(NodeID("node-3"))) {
            try DecommissionPlan(leaving: n1, ring: four, states: Self.states(4, leaving: [3])) { _ in true }
        }
        #expect(throws: DecommissionError.destinationDown(NodeID("node-0"))) {
            try DecommissionPlan(leaving: n1, ring: four, states: Self.states(4)) { $0 != NodeID("node-0") }
        }
        // A down node that receives nothing does not matter: with 4 nodes and N = 3 every
        // other node gains something, so check with 12 nodes of 2 tokens, where some gain nothing.
        let twelve = Ring(
            members: (0..<12).map { RingMember(id: NodeID("node-\($0)"), tokenCount: 2) }, replicationFactor: 3)
        let plan = try? DecommissionPlan(leaving: n1, ring: twelve, states: Self.states(12, tokens: 2)) { _ in true }
        let idle = twelve.members.map(\.id).first { id in id != n1 && !(plan?.streams.contains { $0.destination == id } ?? true) }
        #expect(idle != nil)
        #expect(throws: Never.self) {
            try DecommissionPlan(leaving: n1, ring: twelve, states: Self.states(12, tokens: 2)) { $0 != idle }
        }
    }

    @Test func ofTwoNodesLeavingAtOnceTheLargerIdGivesWay() {
        let both = Self.states(5, leaving: [1, 3])
        #expect(DecommissionPlan.nodeToGiveWayTo(leaving: NodeID("node-3"), states: both, leftBefore: []) == NodeID("node-1"))
        #expect(DecommissionPlan.nodeToGiveWayTo(leaving: NodeID("node-1"), states: both, leftBefore: []) == nil)
        #expect(
            DecommissionPlan.nodeToGiveWayTo(leaving: NodeID("node-3"), states: Self.states(5, leaving: [3]), leftBefore: [])
                == nil)
    }

    /// The other node finished leaving while this one waited for its peers to hear: this
    /// one gives way too (whatever the ids), but not to a node that had left before.
    @Test func aNodeThatLeftMeanwhileIsGivenWayTo() {
        var states = Self.states(4, leaving: [3])
        states[NodeID("node-1")]?.status = .left
        let three = NodeID("node-3"), one = NodeID("node-1")
        #expect(DecommissionPlan.nodeToGiveWayTo(leaving: three, states: states, leftBefore: []) == one)
        #expect(DecommissionPlan.nodeToGiveWayTo(leaving: three, states: states, leftBefore: [one]) == nil)
        states[NodeID("node-3")]?.status = .normal
        states[NodeID("node-0")]?.status = .leaving
        states[NodeID("node-1")]?.status = .normal
        states[NodeID("node-3")]?.status = .left
        #expect(DecommissionPlan.nodeToGiveWayTo(leaving: NodeID("node-0"), states: states, leftBefore: []) == three)
    }

    @Test func pendingReplicasAreTheNodesGainingTheLeaversRanges() {
        let leaving = Membership(Array(Self.states(4, leaving: [3]).values))
        let ring = leaving.ring(replicationFactor: 3)
        let future = leaving.pendingRing(replicationFactor: 3)
        #expect(ring.members.count == 4)
        #expect(future?.members.map(\.id.name) == ["node-0", "node-1", "node-2"])
        var view = ClusterView.Snapshot(
            local: NodeID("node-0"), ring: ring, pendingRing: future, states: leaving.states, live: [], downSinceMillis: [:])
        var withPending = 0
        for key in RingTests.keys.prefix(3_000) {
            let pending = view.pendingReplicas(for: key.token)
            if ring.replicas(for: key).contains(NodeID("node-3")) {
                // The leaver's place goes to exactly one node that did not hold the key.
                #expect(pending.count == 1 && !ring.replicas(for: key).contains(pending[0]))
                #expect(Set(future!.replicas(for: key)) == Set(ring.replicas(for: key)).subtracting([NodeID("node-3")]).union(pending))
                withPending += 1
            } else {
                #expect(pending.isEmpty)
            }
        }
        #expect(withPending > 1_000)  // N = 3 of 4 nodes: the leaver holds about 3/4 of the keys
        // Nobody leaving: no pending ring, no pending replicas.
        let steady = Membership(Array(Self.states(4).values))
        #expect(steady.pendingRing(replicationFactor: 3) == nil)
        view.pendingRing = nil
        #expect(view.pendingReplicas(for: RingTests.keys[0].token).isEmpty)
    }

    @Test func pendingAcksAddToTheConsistencyLevel() {
        #expect(ConsistencyLevel.quorum.requiredWriteAcks(replicas: 3, pending: 0) == 2)
        #expect(ConsistencyLevel.quorum.requiredWriteAcks(replicas: 3, pending: 1) == 3)
        #expect(ConsistencyLevel.one.requiredWriteAcks(replicas: 3, pending: 1) == 2)
        #expect(ConsistencyLevel.all.requiredWriteAcks(replicas: 3, pending: 1) == 4)
        // W + p acks out of N + p targets always include W from the natural replicas and W
        // from the replicas after the move (natural − leaver + pending), whichever ack.
        let natural = ["a", "b", "leaver"]
        let future = ["a", "b", "p"]
        let targets = natural + ["p"]
        for level in ConsistencyLevel.allCases {
            let w = level.requiredReplies(replicationFactor: 3)
            let needed = level.requiredWriteAcks(replicas: 3, pending: 1)
            for mask in 0..<(1 << targets.count) where mask.nonzeroBitCount == needed {
                let acked = Set(targets.indices.filter { mask & (1 << $0) != 0 }.map { targets[$0] })
                #expect(acked.intersection(natural).count >= w && acked.intersection(future).count >= w)
            }
        }
    }

    @Test func aStatusChangeIsKnownOnceEveryLivePeerGossipedItBack() {
        var sim = GossipSimulation(count: 5, seed: 11)
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone && $0.everyoneUp }, limit: 20) != nil)
        let version = sim.nodes[3].updateLocal(status: .leaving)
        #expect(sim.nodes[3].peersBehind(localVersion: version).count == 4)
        let rounds = sim.rounds(until: { $0.nodes[3].peersBehind(localVersion: version).isEmpty }, limit: 30)
        #expect(rounds != nil)
        // By then every peer does hold the change.
        #expect(sim.nodes.allSatisfy { $0.membership[GossipSimulation.id(3)]?.status == .leaving })
        // A peer that is down is not waited for.
        let next = sim.nodes[3].updateLocal(status: .left)
        sim.isolated = [4]
        for _ in 0..<15 { sim.round() }
        #expect(!sim.nodes[3].isUp(GossipSimulation.id(4)))
        #expect(sim.nodes[3].peersBehind(localVersion: next).isEmpty)
    }

    @Test func closedPiecesCoverTheRangeExactly() {
        let plain = TokenRange(start: Token(rawValue: 10), end: Token(rawValue: 20))
        #expect(plain.closedPieces == [Token(rawValue: 11)...Token(rawValue: 20)])
        let wrapping = TokenRange(start: Token(rawValue: .max - 1), end: Token(rawValue: 5))
        #expect(wrapping.closedPieces == [Token(rawValue: .max)...Token(rawValue: .max), Token.min...Token(rawValue: 5)])
        let fromMax = TokenRange(start: .max, end: Token(rawValue: 5))
        #expect(fromMax.closedPieces == [Token.min...Token(rawValue: 5)])
        #expect(TokenRange.fullRing.closedPieces == [Token(rawValue: 1)...Token.max, Token.min...Token.min])
    }
}
