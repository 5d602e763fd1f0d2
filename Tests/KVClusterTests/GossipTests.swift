import Foundation
import KVCore
import Testing

@testable import KVCluster

@Suite struct GossipTests {
    @Test func tenNodesJoinThroughASeedAndMarkEachOtherUp() {
        for seed in UInt64(1)...5 {
            var sim = GossipSimulation(count: 10, seed: seed)
            // Everyone starts knowing only itself; all talk to the seed, which learns and
            // hands out every state: a couple of rounds.
            let rounds = sim.rounds(until: { $0.everyoneKnowsEveryone }, limit: 40)
            #expect(rounds != nil && rounds! <= 4, "took \(String(describing: rounds)) rounds")
            // A node is marked up once its heartbeat is seen to advance: a few rounds later.
            #expect(sim.rounds(until: { $0.everyoneUp }, limit: 10) != nil)
            #expect(sim.nodes.allSatisfy { $0.downNodes.isEmpty })
        }
    }

    @Test(arguments: [10, 50, 100])
    func aChangeSpreadsInLogarithmicRounds(nodes: Int) {
        // A non-seed node changes its state; push-pull gossip with one random peer per
        // round reaches all n nodes in about log2(n) rounds.
        let bound = Int((log2(Double(nodes))).rounded(.up)) + 2
        for seed in UInt64(1)...(nodes >= 100 ? 1 : 2) {
            var sim = GossipSimulation(count: nodes, seed: seed)
            sim.throughCodec = false
            #expect(sim.rounds(until: { $0.everyoneKnowsEveryone }, limit: 40) != nil)
            for _ in 0..<3 { sim.round() }
            let who = nodes - 2
            let id = GossipSimulation.id(who)
            sim.nodes[who].updateLocal(status: .leaving)
            let rounds = sim.rounds(
                until: { s in s.nodes.allSatisfy { $0.membership[id]?.status == .leaving } }, limit: 40)
            #expect(rounds != nil && rounds! <= bound, "n = \(nodes): took \(String(describing: rounds)) rounds")
        }
    }

    @Test func partitionedNodeIsMarkedDownThenUpAfterHealing() {
        var sim = GossipSimulation(count: 10, seed: 4)
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone && $0.everyoneUp }, limit: 30) != nil)
        for _ in 0..<30 { sim.round() }  // let the detectors learn the rhythm
        #expect(sim.everyoneUp)
        let lonely = 9
        let lonelyID = GossipSimulation.id(lonely)
        sim.events = Array(repeating: [], count: 10)
        sim.isolated = [lonely]

        // Every other node's detector crosses phi 8 within a few seconds of silence.
        let downAfter = sim.rounds(until: { s in (0..<9).allSatisfy { !s.nodes[$0].isUp(lonelyID) } }, limit: 30)
        #expect(downAfter != nil && downAfter! >= 3, "down after \(String(describing: downAfter)) rounds")
        for i in 0..<9 {
            #expect(sim.events[i].contains(.down(lonelyID)))
            #expect(sim.nodes[i].isUp(GossipSimulation.id((i + 1) % 9)))  // the majority still sees itself up
        }
        #expect(sim.rounds(until: { s in s.nodes[lonely].downNodes.count == 9 }, limit: 10) != nil)
        #expect(sim.nodes[0].phi(of: lonelyID, nowMillis: sim.now) > 8)

        sim.isolated = []
        let upAfter = sim.rounds(until: { $0.everyoneUp }, limit: 10)
        #expect(upAfter != nil && upAfter! <= 4, "up after \(String(describing: upAfter)) rounds")
        for i in 0..<9 { #expect(sim.events[i].contains(.up(lonelyID))) }
        // Stable afterwards: no flapping.
        sim.events = Array(repeating: [], count: 10)
        for _ in 0..<30 { sim.round() }
        #expect(sim.events.allSatisfy { $0.isEmpty })
    }

    @Test func lossyNetworkCausesNoFalseDowns() {
        // 10 % of messages lost for five simulated minutes: heartbeats still get
        // through often enough indirectly that no detector crosses phi 8.
        var sim = GossipSimulation(count: 10, seed: 3)
        sim.throughCodec = false
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone && $0.everyoneUp }, limit: 30) != nil)
        for _ in 0..<20 { sim.round() }
        sim.lossRate = 0.1
        sim.events = Array(repeating: [], count: 10)
        for _ in 0..<300 { sim.round() }
        #expect(sim.events.allSatisfy { $0.isEmpty })
        #expect(sim.everyoneUp)
    }

    @Test func restartedNodesNewGenerationSupersedes() {
        var sim = GossipSimulation(count: 6, seed: 11)
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone && $0.everyoneUp }, limit: 30) != nil)
        for _ in 0..<20 { sim.round() }
        let id = GossipSimulation.id(3)
        let oldVersion = sim.nodes[0].membership[id]!.version
        #expect(oldVersion > 20)

        sim.restart(3, generation: 2)
        #expect(sim.nodes[3].localState.version == 0)
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone }, limit: 10) != nil)
        for i in [0, 1, 2, 4, 5] {
            let seen = sim.nodes[i].membership[id]!
            #expect(seen.generation == 2)
            #expect(seen.version < oldVersion)  // lower version, newer generation: it wins
            #expect(sim.events[i].contains { if case let .restarted(s) = $0 { s.id == id } else { false } })
        }
        // The restarted node relearns the others and sees them all up.
        #expect(sim.rounds(until: { $0.everyoneUp }, limit: 10) != nil)
        #expect(sim.nodes[3].membership.states.count == 6)
    }

    @Test func statusChangesSpreadAndShapeTheRing() {
        var sim = GossipSimulation(count: 5, seed: 2)
        #expect(sim.rounds(until: { $0.everyoneKnowsEveryone }, limit: 30) != nil)
        let ring = sim.nodes[0].membership.ring(replicationFactor: 3)
        #expect(ring.members.count == 5)

        sim.nodes[2].updateLocal(status: .leaving)
        sim.nodes[4].updateLocal(status: .left)
        let spread = sim.rounds(
            until: { s in
                s.nodes.allSatisfy {
                    $0.membership[GossipSimulation.id(2)]?.status == .leaving
                        && $0.membership[GossipSimulation.id(4)]?.status == .left
                }
            }, limit: 10)
        #expect(spread != nil)
        let changed = sim.events[0].contains {
            if case let .stateChanged(from, to) = $0 { from.status == .normal && to.status == .leaving } else { false }
        }
        #expect(changed)
        // Leaving nodes still own their tokens; left ones do not.
        let after = sim.nodes[0].membership.ring(replicationFactor: 3)
        #expect(after.members.map(\.id.name) == ["n0", "n1", "n2", "n3"])
        #expect(!sim.nodes[0].isUp(GossipSimulation.id(4)))
        #expect(!sim.nodes[0].downNodes.contains(GossipSimulation.id(4)))
    }

    @Test func leftNodesAreForgottenAfterRetention() {
        let settings = GossipSettings(intervalMillis: 1000, leftRetentionMillis: 5_000)
        let me = GossipSimulation.state(0)
        var g = GossipInstance(local: me, seeds: [], settings: settings)
        var gone = GossipSimulation.state(1)
        gone.status = .left
        gone.version = 7
        let ack2 = GossipMessage(from: gone.id, fromAddress: gone.address, body: .ack2(updates: [.state(gone)]))
        let events = g.receive(ack2, nowMillis: 1_000)
        #expect(events == [.discovered(gone)])
        var rng = SeededRandom(seed: 1)
        #expect(!g.tick(nowMillis: 4_000, using: &rng).contains(.forgotten(gone.id)))
        #expect(g.tick(nowMillis: 6_000, using: &rng).contains(.forgotten(gone.id)))
        #expect(g.membership[gone.id] == nil)
    }

    @Test func synAckAck2Exchange() {
        // a knows x at version 5, b knows x at version 9 and y; a syn to b brings both back.
        let a = GossipSimulation.state(0)
        let b = GossipSimulation.state(1)
        var x5 = GossipSimulation.state(5)
        x5.version = 5
        var x9 = x5
        x9.version = 9
        let y = GossipSimulation.state(6)
        var ga = GossipInstance(local: a, seeds: [])
        var gb = GossipInstance(local: b, seeds: [])
        _ = ga.receive(.init(from: x5.id, fromAddress: x5.address, body: .ack2(updates: [.state(x5)])), nowMillis: 1)
        _ = gb.receive(.init(from: x9.id, fromAddress: x9.address, body: .ack2(updates: [.state(x9), .state(y)])), nowMillis: 1)

        let syn = GossipMessage(from: a.id, fromAddress: a.address, body: .syn(digests: ga.membership.digests))
        let reply = gb.receive(syn, nowMillis: 2)
        guard case let .send(ack, to) = reply.first, case let .ack(updates, requests) = ack.body else {
            Issue.record("expected an ack, got \(reply)")
            return
        }
        #expect(to == a.address)
        // b's own state and the unknown y in full; for x, a already holds its status and
        // tokens (x changed nothing since version 5), so only the heartbeat travels.
        #expect(Set(updates) == [.state(b), .state(y), .heartbeat(x9.digest)])
        #expect(requests == [GossipDigest(id: a.id, generation: 0, version: 0)])  // b has never heard of a

        let out = ga.receive(ack, nowMillis: 3)
        #expect(ga.membership[x9.id]?.version == 9)
        #expect(out.contains(.discovered(y)))
        guard case let .send(ack2, _) = out.first(where: { if case .send = $0 { true } else { false } }),
            case let .ack2(sent) = ack2.body
        else {
            Issue.record("expected an ack2, got \(out)")
            return
        }
        #expect(sent == [.state(a)])
        _ = gb.receive(ack2, nowMillis: 4)
        #expect(gb.membership[a.id] == a)
    }

    @Test func heartbeatOnlyUpdatesAreSmallAndSafe() {
        let x = EndpointState(
            id: NodeID("x"), generation: 1, version: 10, stateVersion: 3, status: .normal,
            address: NodeAddress(host: "10.0.0.9", port: 7000), tokens: Ring.defaultTokens(for: NodeID("x"), count: 256))
        #expect(GossipUpdate.bringing(GossipDigest(id: x.id, generation: 1, version: 3), to: x) == .heartbeat(x.digest))
        #expect(GossipUpdate.bringing(GossipDigest(id: x.id, generation: 1, version: 2), to: x) == .state(x))
        #expect(GossipUpdate.bringing(GossipDigest(id: x.id, generation: 0, version: 9), to: x) == .state(x))
        #expect(GossipUpdate.bringing(nil, to: x) == .state(x))
        let from = NodeAddress(host: "h", port: 1)
        let small = GossipCodec.encode(.init(from: NodeID("a"), fromAddress: from, body: .ack2(updates: [.heartbeat(x.digest)])))
        let full = GossipCodec.encode(.init(from: NodeID("a"), fromAddress: from, body: .ack2(updates: [.state(x)])))
        #expect(small.count < 20)
        #expect(full.count > 256 * 8)

        var g = GossipInstance(local: GossipSimulation.state(0), seeds: [])
        func deliver(_ u: GossipUpdate, at ms: UInt64) -> [GossipDirective] {
            g.receive(.init(from: x.id, fromAddress: x.address, body: .ack2(updates: [u])), nowMillis: ms)
        }
        // A heartbeat for a node never seen in full is ignored (the next exchange sends it whole).
        #expect(deliver(.heartbeat(x.digest), at: 1).isEmpty)
        #expect(g.membership[x.id] == nil)
        #expect(deliver(.state(x), at: 2) == [.discovered(x)])
        // Another generation's heartbeat cannot be applied to this generation's state.
        #expect(deliver(.heartbeat(GossipDigest(id: x.id, generation: 2, version: 50)), at: 3).isEmpty)
        #expect(g.membership[x.id] == x)
        // This generation's newer heartbeat advances the version, keeps the rest, and counts as a sign of life.
        #expect(deliver(.heartbeat(GossipDigest(id: x.id, generation: 1, version: 11)), at: 4) == [.up(x.id)])
        #expect(g.membership[x.id]?.version == 11)
        #expect(g.membership[x.id]?.tokens == x.tokens)
        #expect(deliver(.heartbeat(GossipDigest(id: x.id, generation: 1, version: 11)), at: 5).isEmpty)
    }

    @Test func mergeRule() {
        let base = GossipSimulation.state(1, generation: 5)
        var newerVersion = base
        newerVersion.version = 3
        var newerGeneration = base
        newerGeneration.generation = 6
        newerGeneration.version = 0
        #expect(newerVersion.supersedes(base))
        #expect(newerGeneration.supersedes(newerVersion))
        #expect(!base.supersedes(base))
        // Merging is order-independent and idempotent.
        let orders = [[base, newerVersion, newerGeneration], [newerGeneration, base, newerVersion],
                      [newerVersion, newerGeneration, newerGeneration, base]]
        for order in orders {
            #expect(Membership(order)[base.id] == newerGeneration)
        }
        var m = Membership([newerVersion])
        #expect(m.merge(base).changed == false)
        #expect(m.merge(newerGeneration).changed == true)
    }

    @Test func nextGenerationAlwaysGrows() {
        #expect(GossipInstance.nextGeneration(previous: nil, nowMillis: 1_700_000_000_000) == 1_700_000_000)
        #expect(GossipInstance.nextGeneration(previous: 1_700_000_000, nowMillis: 1_700_000_000_500) == 1_700_000_001)
        #expect(GossipInstance.nextGeneration(previous: 1_800_000_000, nowMillis: 1_700_000_000_000) == 1_800_000_001)
    }
}
