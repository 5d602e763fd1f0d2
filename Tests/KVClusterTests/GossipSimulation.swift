import KVCore

@testable import KVCluster

/// A whole cluster of `GossipInstance`s in one value: simulated time, a seeded
/// random source, and an in-test message queue that can isolate nodes. Messages
/// sent during a round are delivered (and answered) within that round.
struct GossipSimulation {
    var nodes: [GossipInstance]
    var now: UInt64 = 1_000_000
    var rng: SeededRandom
    /// Nodes cut off from every other node.
    var isolated: Set<Int> = []
    /// Every non-send directive each node emitted, in order.
    var events: [[GossipDirective]]
    var messagesDelivered = 0
    /// Whether every message is encoded and decoded on its way (exercises the codec; costs time).
    var throughCodec = true
    /// Share of messages lost in transit, 0...1 (drawn from the same seeded generator).
    var lossRate = 0.0
    private var indexOf: [NodeAddress: Int] = [:]

    static func address(_ i: Int) -> NodeAddress { NodeAddress(host: "10.0.0.\(i)", port: 7000) }
    static func id(_ i: Int) -> NodeID { NodeID("n\(i)") }

    static func state(_ i: Int, generation: UInt64 = 1) -> EndpointState {
        EndpointState(
            id: id(i), generation: generation, status: .normal, address: address(i),
            tokens: Ring.defaultTokens(for: id(i), count: 8))
    }

    /// `count` nodes that know only themselves; `seeds` node indices are the seeds; node i
    /// belongs to cluster `clusterNames[i]` (default: all to the default cluster).
    init(count: Int, seeds: [Int] = [0], seed: UInt64 = 1, clusterNames: [String] = []) {
        rng = SeededRandom(seed: seed)
        nodes = (0..<count).map {
            GossipInstance(
                local: Self.state($0), seeds: seeds.map(Self.address),
                clusterName: $0 < clusterNames.count ? clusterNames[$0] : ClusterSettings.defaultName)
        }
        events = Array(repeating: [], count: count)
        for i in 0..<count { indexOf[Self.address(i)] = i }
    }

    /// Replaces node `i` by a fresh instance, as a process restart would.
    mutating func restart(_ i: Int, generation: UInt64, seeds: [Int] = [0]) {
        nodes[i] = GossipInstance(local: Self.state(i, generation: generation), seeds: seeds.map(Self.address))
    }

    /// One gossip interval: every node ticks (in index order), then all messages are delivered.
    mutating func round(intervalMillis: UInt64 = 1000) {
        now += intervalMillis
        var queue: [(from: Int, to: NodeAddress, message: GossipMessage)] = []
        for i in nodes.indices {
            let out = nodes[i].tick(nowMillis: now, using: &rng)
            collect(out, from: i, into: &queue)
        }
        var head = 0
        while head < queue.count {
            let (from, to, message) = queue[head]
            head += 1
            guard let target = indexOf[to], !isolated.contains(from), !isolated.contains(target) else { continue }
            if lossRate > 0, Double.random(in: 0..<1, using: &rng) < lossRate { continue }
            messagesDelivered += 1
            let out = nodes[target].receive(message, nowMillis: now)
            collect(out, from: target, into: &queue)
        }
    }

    private mutating func collect(
        _ directives: [GossipDirective], from i: Int, into queue: inout [(from: Int, to: NodeAddress, message: GossipMessage)]
    ) {
        for d in directives {
            if case let .send(message, to) = d {
                // Every message goes through the wire format, so the codec is exercised too.
                queue.append((i, to, throughCodec ? try! GossipCodec.decode(GossipCodec.encode(message)) : message))
            } else {
                events[i].append(d)
            }
        }
    }

    /// True when every node knows every other node's current generation.
    var everyoneKnowsEveryone: Bool {
        nodes.allSatisfy { n in
            nodes.allSatisfy { other in n.membership[other.localID]?.generation == other.localState.generation }
        }
    }

    /// True when every node considers every other node up.
    var everyoneUp: Bool {
        nodes.allSatisfy { n in nodes.allSatisfy { n.isUp($0.localID) } }
    }

    /// Runs rounds until `condition` holds; returns how many it took (nil past `limit`).
    mutating func rounds(until condition: (GossipSimulation) -> Bool, limit: Int) -> Int? {
        for r in 1...limit {
            round()
            if condition(self) { return r }
        }
        return nil
    }
}
