import KVCore
import Testing

@testable import KVCluster

@Suite struct RingTests {
    static func ring(nodes: Int, racks: Int? = nil, tokens: Int = 256, rf: Int = 3) -> Ring {
        let members = (0..<nodes).map { i in
            RingMember(id: NodeID("node-\(i)"), rack: racks.map { "rack-\(i % $0)" }, tokenCount: tokens)
        }
        return Ring(members: members, replicationFactor: rf)
    }

    static let keys: [Key] = (0..<10_000).map { Key("user:\($0)") }

    @Test func fiveNodesOwnAboutAFifthEach() {
        let ring = Self.ring(nodes: 5)
        #expect(ring.tokens.count == 5 * 256)
        let shares = ring.primaryOwnership
        #expect(shares.count == 5)
        #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
        for (node, share) in shares {
            #expect(share > 0.17 && share < 0.23, "\(node) owns \(share)")
        }
        // With N = 3 each node replicates about 3/5 of the ring.
        for m in ring.members {
            let replicated = ring.replicatedRanges(of: m.id).reduce(0) { $0 + $1.fractionOfRing }
            #expect(replicated > 0.55 && replicated < 0.65, "\(m.id) replicates \(replicated)")
        }
        // And the keys follow the shares.
        var counts: [NodeID: Int] = [:]
        for k in Self.keys { counts[ring.primary(for: k.token)!, default: 0] += 1 }
        for (_, c) in counts { #expect(c > 1_700 && c < 2_300) }
    }

    @Test func replicasAreNDistinctNodesPrimaryFirst() {
        let ring = Self.ring(nodes: 5)
        for k in Self.keys.prefix(2_000) {
            let r = ring.replicas(for: k)
            #expect(r.count == 3)
            #expect(Set(r).count == 3)
            #expect(r.first == ring.primary(for: k.token))
        }
    }

    @Test func lookupMatchesAClockwiseWalk() {
        let ring = Self.ring(nodes: 7, tokens: 16)
        var rng = SeededRandom(seed: 7)
        let owners: [(Token, NodeID)] = ring.members.flatMap { m in m.tokens.map { ($0, m.id) } }.sorted { $0.0 < $1.0 }
        for _ in 0..<2_000 {
            let t = Token(rawValue: rng.next())
            var start = owners.firstIndex { $0.0 >= t } ?? 0
            var expected: [NodeID] = []
            while expected.count < 3 {
                if !expected.contains(owners[start].1) { expected.append(owners[start].1) }
                start = (start + 1) % owners.count
            }
            #expect(ring.replicas(for: t) == expected)
        }
        // The extremes of the token space wrap to the first vnode.
        #expect(ring.primary(for: .max) == owners[0].1)
        #expect(ring.primary(for: .min) == owners[0].1)
        #expect(ring.primary(for: owners[0].0) == owners[0].1)
    }

    @Test func racksAreSpreadFirst() {
        // Six nodes on three racks: every replica set covers all three racks.
        let ring = Self.ring(nodes: 6, racks: 3)
        let rackOf = Dictionary(uniqueKeysWithValues: ring.members.map { ($0.id, $0.rack!) })
        for k in Self.keys.prefix(2_000) {
            let r = ring.replicas(for: k)
            #expect(Set(r).count == 3)
            #expect(Set(r.map { rackOf[$0]! }).count == 3)
        }
        // Four nodes on two racks, N = 3: both racks used, still three distinct nodes.
        let twoRacks = Self.ring(nodes: 4, racks: 2)
        let rackOf2 = Dictionary(uniqueKeysWithValues: twoRacks.members.map { ($0.id, $0.rack!) })
        for k in Self.keys.prefix(2_000) {
            let r = twoRacks.replicas(for: k)
            #expect(Set(r).count == 3)
            #expect(Set(r.map { rackOf2[$0]! }).count == 2)
        }
        // Without racks the same nodes often put two replicas on one "rack" label.
        let plain = Ring(
            members: ring.members.map { RingMember(id: $0.id, tokens: $0.tokens) }, replicationFactor: 3)
        let sameRack = Self.keys.prefix(2_000).filter { Set(plain.replicas(for: $0).map { rackOf[$0]! }).count < 3 }
        #expect(!sameRack.isEmpty)
    }

    @Test func replicationIsCappedBySmallClusters() {
        let one = Self.ring(nodes: 1)
        #expect(one.replicas(for: Key("a")) == [NodeID("node-0")])
        #expect(one.primaryRanges(of: NodeID("node-0")).count == 256)
        let two = Self.ring(nodes: 2)
        #expect(Set(two.replicas(for: Key("a"))) == [NodeID("node-0"), NodeID("node-1")])
        let empty = Ring.empty(replicationFactor: 3)
        #expect(empty.isEmpty)
        #expect(empty.replicas(for: Key("a")).isEmpty)
        #expect(empty.primary(for: .min) == nil)
        let single = Ring(members: [RingMember(id: NodeID("x"), tokens: [Token(rawValue: 5)])], replicationFactor: 3)
        #expect(single.primaryRanges(of: NodeID("x")) == [.fullRing])
    }

    @Test func addingANodeMovesAboutOneNthOfTheKeys() {
        let five = Self.ring(nodes: 5)
        let six = Self.ring(nodes: 6)
        let newcomer = NodeID("node-5")
        var primaryMoved = 0
        var setChanged = 0
        for k in Self.keys {
            let before = five.replicas(for: k)
            let after = six.replicas(for: k)
            if before[0] != after[0] {
                primaryMoved += 1
                #expect(after[0] == newcomer, "a key moved to an old node")
            }
            if Set(before) != Set(after) {
                setChanged += 1
                #expect(after.contains(newcomer))
                // Exactly one old replica makes room for the newcomer.
                #expect(Set(before).subtracting(after).count == 1)
            }
        }
        let moved = Double(primaryMoved) / Double(Self.keys.count)
        #expect(moved > 1.0 / 6 - 0.04 && moved < 1.0 / 6 + 0.04, "moved \(moved)")
        // The newcomer replicates ~3/6 of the ring, all of it new to it.
        let changed = Double(setChanged) / Double(Self.keys.count)
        #expect(changed > 0.44 && changed < 0.56, "changed \(changed)")
    }

    @Test func ownershipChangesCoverExactlyTheKeysThatMove() {
        let five = Self.ring(nodes: 5)
        let six = Self.ring(nodes: 6)
        let changes = five.ownershipChanges(to: six)
        #expect(!changes.isEmpty)
        for c in changes {
            #expect(c.gained == [NodeID("node-5")])
            #expect(c.lost.count == 1)
        }
        for k in Self.keys {
            let moves = Set(five.replicas(for: k)) != Set(six.replicas(for: k))
            let covering = changes.filter { $0.range.contains(k.token) }
            #expect(covering.count == (moves ? 1 : 0))
            if let c = covering.first {
                #expect(c.oldReplicas == five.replicas(for: k))
                #expect(c.newReplicas == six.replicas(for: k))
            }
        }
        let total = changes.reduce(0) { $0 + $1.range.fractionOfRing }
        #expect(total > 0.44 && total < 0.56)
        // Removing the node again is the mirror image.
        let back = six.ownershipChanges(to: five)
        #expect(back.reduce(0) { $0 + $1.range.fractionOfRing } == total)
        #expect(back.allSatisfy { $0.lost == [NodeID("node-5")] })
        #expect(five.ownershipChanges(to: five).isEmpty)
        #expect(five == Self.ring(nodes: 5) && five != six)
    }

    @Test func primaryRangesPartitionTheRing() {
        let ring = Self.ring(nodes: 4, tokens: 32)
        var all: [TokenRange] = []
        for m in ring.members { all += ring.primaryRanges(of: m.id) }
        #expect(all.count == ring.tokens.count)
        #expect(abs(all.reduce(0) { $0 + $1.fractionOfRing } - 1) < 1e-9)
        for k in Self.keys.prefix(500) {
            let owner = ring.primary(for: k.token)!
            #expect(ring.primaryRanges(of: owner).filter { $0.contains(k.token) }.count == 1)
        }
    }

    @Test func tokenRangeContainment() {
        let r = TokenRange(start: Token(rawValue: 10), end: Token(rawValue: 20))
        #expect(!r.contains(Token(rawValue: 10)))
        #expect(r.contains(Token(rawValue: 11)))
        #expect(r.contains(Token(rawValue: 20)))
        #expect(!r.contains(Token(rawValue: 21)))
        let wrap = TokenRange(start: Token(rawValue: 20), end: Token(rawValue: 10))
        #expect(wrap.wraps)
        #expect(wrap.contains(.max) && wrap.contains(.min) && wrap.contains(Token(rawValue: 10)))
        #expect(!wrap.contains(Token(rawValue: 15)) && !wrap.contains(Token(rawValue: 20)))
        #expect(TokenRange.fullRing.contains(Token(rawValue: 12345)))
        #expect(TokenRange.fullRing.width == UInt128(1) << 64)
        #expect(wrap.width == UInt128(UInt64.max - 20) + 11)
    }

    @Test func unwrappedPiecesCoverTheSameTokens() {
        let plain = TokenRange(start: Token(rawValue: 10), end: Token(rawValue: 20)).unwrapped
        #expect(plain.count == 1 && plain[0].lower.rawValue == 10 && plain[0].upper.rawValue == 20 && !plain[0].includesMin)
        let wrap = TokenRange(start: Token(rawValue: .max - 5), end: Token(rawValue: 3)).unwrapped
        #expect(wrap.count == 2)
        #expect(wrap[0].lower.rawValue == .max - 5 && wrap[0].upper == .max && !wrap[0].includesMin)
        #expect(wrap[1].lower == .min && wrap[1].upper.rawValue == 3 && wrap[1].includesMin)
        let full = TokenRange.fullRing.unwrapped
        #expect(full.count == 2 && full[1].includesMin && full[0].upper == .max)
        let endsAtMax = TokenRange(start: .max, end: Token(rawValue: 7)).unwrapped
        #expect(endsAtMax.count == 1 && endsAtMax[0].includesMin)
    }

    @Test func aHundredNodeRingBuildsQuickly() {
        // 25,600 vnodes: the ring is rebuilt on every membership change, so it must be cheap.
        let clock = ContinuousClock()
        var ring: Ring?
        let elapsed = clock.measure { ring = Self.ring(nodes: 100, racks: 4) }
        #expect(ring?.tokens.count == 25_600)
        #expect(elapsed < .seconds(5), "built in \(elapsed)")
        let shares = ring!.primaryOwnership.values
        #expect(shares.allSatisfy { $0 > 0.006 && $0 < 0.014 })
    }

    @Test func defaultTokensAreDeterministic() {
        #expect(Ring.defaultTokens(for: NodeID("a"), count: 4) == Ring.defaultTokens(for: NodeID("a"), count: 4))
        #expect(Ring.defaultTokens(for: NodeID("a"), count: 4) != Ring.defaultTokens(for: NodeID("b"), count: 4))
        #expect(Ring.defaultTokens(for: NodeID("a"), count: 4)[0] == Token(hashing: Array("a#0".utf8)))
    }

    @Test func duplicateTokensGoToTheSmallerID() {
        let t = Token(rawValue: 42)
        let ring = Ring(
            members: [RingMember(id: NodeID("b"), tokens: [t]), RingMember(id: NodeID("a"), tokens: [t])],
            replicationFactor: 1)
        #expect(ring.tokens == [t])
        #expect(ring.primary(for: t) == NodeID("a"))
    }
}
