import KVCore
import PropertyBased
import Testing

@testable import KVCluster

/// Invariants that hold for any input, checked on generated ones.
@Suite struct PropertyTests {
    @Test func replicasAreDistinctAndIncludeThePrimary() async {
        let ring = RingTests.ring(nodes: 6, racks: 2, tokens: 32)
        await propertyCheck(input: Gen.uint64()) { raw in
            let t = Token(rawValue: raw)
            let r = ring.replicas(for: t)
            #expect(r.count == 3 && Set(r).count == 3)
            #expect(r.first == ring.primary(for: t))
            #expect(ring.primaryRanges(of: r[0]).contains { $0.contains(t) })
            #expect(r.allSatisfy { node in ring.replicatedRanges(of: node).contains { $0.contains(t) } })
        }
    }

    @Test func membershipMergeIgnoresOrder() async {
        // Up to 12 versions of 3 nodes, merged in two random orders: the same table.
        let version = Gen.int(in: 0...3).map { n -> EndpointState in
            var s = GossipSimulation.state(n % 3, generation: UInt64(1 + n / 2))
            s.version = UInt64(n * 7 % 5)
            return s
        }
        await propertyCheck(input: version.array(of: 0...12), Gen.uint64()) { states, seed in
            var rng = SeededRandom(seed: seed)
            let a = Membership(states)
            let b = Membership(states.shuffled(using: &rng))
            #expect(a == b)
            for s in states { #expect(!s.supersedes(a[s.id]!)) }
        }
    }

    @Test func merkleDiffCoversExactlyTheChangedLeaves() async {
        let base: [(Key, Record)] = (0..<300).map {
            (Key("p\($0)"), .value(Value("v\($0)"), at: Timestamp(physicalMillis: 10, logical: 0)))
        }
        await propertyCheck(input: Gen.int(in: 0..<300).array(of: 0...6)) { changed in
            var a = MerkleTree(range: .fullRing, depth: 8)
            var b = MerkleTree(range: .fullRing, depth: 8)
            for (i, (k, r)) in base.enumerated() {
                a.add(key: k, record: r)
                b.add(key: k, record: changed.contains(i) ? .tombstone(at: Timestamp(physicalMillis: 11, logical: 0)) : r)
            }
            let diff = (try? a.differingRanges(from: b)) ?? [TokenRange.fullRing]
            let changedLeaves = Set(changed.map { a.leafIndex(for: base[$0].0.token)! })
            for leaf in 0..<a.leaves.count {
                let covered = diff.contains { $0.contains(a.leafRange(leaf)!.end) }
                #expect(covered == changedLeaves.contains(leaf))
            }
        }
    }

    @Test func gossipCodecRoundTrips() async {
        let state = Gen.int(in: 0...1_000).map { n -> EndpointState in
            EndpointState(
                id: NodeID("node-\(n)"), generation: UInt64(n) << 20, version: UInt64(n * 13), stateVersion: UInt64(n * 7),
                status: NodeStatus.allCases[n % 4], address: NodeAddress(host: "10.1.\(n % 256).1", port: UInt16(n)),
                rack: n % 3 == 0 ? nil : "rack-\(n % 3)", tokens: Ring.defaultTokens(for: NodeID("t\(n)"), count: n % 5))
        }
        await propertyCheck(input: state.array(of: 0...5), Gen.int(in: 1...3)) { states, kind in
            let body: GossipMessage.Body =
                switch kind {
                case 1: .syn(digests: states.map(\.digest))
                case 2: .ack(updates: states.map { .state($0) }, requests: states.reversed().map(\.digest))
                default: .ack2(updates: states.map { .heartbeat($0.digest) } + states.map { .state($0) })
                }
            let message = GossipMessage(from: NodeID("sender"), fromAddress: NodeAddress(host: "h", port: 7), body: body)
            #expect((try? GossipCodec.decode(GossipCodec.encode(message))) == message)
        }
    }
}
