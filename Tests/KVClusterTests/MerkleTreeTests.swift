import KVCore
import Testing

@testable import KVCluster

@Suite struct MerkleTreeTests {
    static let entries: [(Key, Record)] = (0..<5_000).map {
        (Key("k\($0)"), .value(Value("v\($0)"), at: Timestamp(physicalMillis: UInt64(1_000 + $0), logical: 0)))
    }

    static func tree(_ entries: some Sequence<(Key, Record)>, range: TokenRange = .fullRing, depth: Int = 10) -> MerkleTree {
        var t = MerkleTree(range: range, depth: depth)
        for (k, r) in entries { t.add(key: k, record: r) }
        return t
    }

    @Test func sameEntriesInAnyOrderGiveTheSameTree() throws {
        let a = Self.tree(Self.entries)
        let b = Self.tree(Self.entries.reversed())
        #expect(a == b)
        #expect(a.rootHash == b.rootHash)
        #expect(a.entryCount == 5_000)
        #expect(try a.differingRanges(from: b).isEmpty)
        #expect(MerkleTree(range: .fullRing, depth: 10).rootHash == 0)
    }

    @Test func diffFindsExactlyTheLeavesThatDiffer() throws {
        var changed = Self.entries
        let newerAt = Timestamp(physicalMillis: 99_999, logical: 0)
        // A newer version, a tombstone, and a key missing on one side.
        changed[17].1 = .value(Value("v17-new"), at: newerAt)
        changed[2_345].1 = .tombstone(at: newerAt)
        let missing = changed.remove(at: 4_000)
        let a = Self.tree(Self.entries)
        let b = Self.tree(changed)
        #expect(a.rootHash != b.rootHash)
        let diff = try a.differingRanges(from: b)
        #expect(try b.differingRanges(from: a) == diff)
        let expectedLeaves = Set([Self.entries[17].0, Self.entries[2_345].0, missing.0].map { a.leafIndex(for: $0.token)! })
        #expect(expectedLeaves.count == 3)
        #expect(diff.count == 3)  // three leaves, not adjacent
        for leaf in 0..<a.leaves.count {
            let range = a.leafRange(leaf)!
            let covered = diff.contains { $0.contains(range.end) }
            #expect(covered == expectedLeaves.contains(leaf), "leaf \(leaf)")
        }
        // Every changed key lies in a reported range; unchanged keys outside those leaves do not.
        for key in [Self.entries[17].0, Self.entries[2_345].0, missing.0] {
            #expect(diff.contains { $0.contains(key.token) })
        }
    }

    @Test func adjacentDifferingLeavesMerge() throws {
        let range = TokenRange(start: Token(rawValue: 0), end: Token(rawValue: 1_600))  // 16 leaves of 100 tokens
        var a = MerkleTree(range: range, depth: 4)
        var b = MerkleTree(range: range, depth: 4)
        for t in [50, 150, 250, 950] { a.add(token: Token(rawValue: UInt64(t)), entryHash: 7) }
        for t in [50] { b.add(token: Token(rawValue: UInt64(t)), entryHash: 7) }
        let diff = try a.differingRanges(from: b)
        #expect(diff == [
            TokenRange(start: Token(rawValue: 100), end: Token(rawValue: 300)),
            TokenRange(start: Token(rawValue: 900), end: Token(rawValue: 1_000)),
        ])
        // Everything different: the whole range comes back as one.
        let c = MerkleTree(range: range, depth: 4)
        var d = MerkleTree(range: range, depth: 4)
        for t in stride(from: 1, through: 1_600, by: 100) { d.add(token: Token(rawValue: UInt64(t)), entryHash: 1) }
        #expect(try c.differingRanges(from: d) == [range])
    }

    @Test func leavesPartitionTheRange() {
        for range in [
            TokenRange.fullRing,
            TokenRange(start: Token(rawValue: .max - 1_000_000), end: Token(rawValue: 5_000_000)),  // wraps
            TokenRange(start: Token(rawValue: 12_345), end: Token(rawValue: 9_876_543_210)),
        ] {
            for depth in [0, 1, 7, 15] {
                let tree = MerkleTree(range: range, depth: depth)
                #expect(tree.leaves.count == 1 << depth)
                var expectedStart = range.start
                for i in 0..<tree.leaves.count {
                    let leaf = tree.leafRange(i)!
                    #expect(leaf.start == expectedStart)
                    #expect(tree.leafIndex(for: leaf.end) == i)
                    #expect(tree.leafIndex(for: Token(rawValue: leaf.start.rawValue &+ 1)) == i)
                    expectedStart = leaf.end
                }
                #expect(expectedStart == range.end)
            }
        }
    }

    @Test func narrowRangesAndOutsideTokens() {
        // 10 tokens, 16 leaves: some leaves are empty; every token still finds its leaf.
        let range = TokenRange(start: Token(rawValue: 100), end: Token(rawValue: 110))
        var tree = MerkleTree(range: range, depth: 4)
        #expect((0..<16).filter { tree.leafRange($0) == nil }.count == 6)
        for t in 101...110 {
            let i = tree.leafIndex(for: Token(rawValue: UInt64(t)))!
            #expect(tree.leafRange(i)!.contains(Token(rawValue: UInt64(t))))
        }
        #expect(tree.leafIndex(for: Token(rawValue: 100)) == nil)
        #expect(tree.leafIndex(for: Token(rawValue: 111)) == nil)
        let added = tree.add(token: Token(rawValue: 5), entryHash: 1)
        #expect(!added)
        #expect(tree.entryCount == 0)
    }

    @Test func shapesMustMatch() {
        let a = MerkleTree(range: .fullRing, depth: 3)
        let b = MerkleTree(range: .fullRing, depth: 4)
        let c = MerkleTree(range: TokenRange(start: .min, end: Token(rawValue: 9)), depth: 3)
        #expect(throws: MerkleTreeError.self) { try a.differingRanges(from: b) }
        #expect(throws: MerkleTreeError.self) { try a.differingRanges(from: c) }
    }

    @Test func entryHashCoversEveryField() {
        let k = Key("k")
        let ts = Timestamp(physicalMillis: 1, logical: 0)
        let hashes = [
            MerkleTree.hash(key: k, record: .value(Value("v"), at: ts)),
            MerkleTree.hash(key: Key("k2"), record: .value(Value("v"), at: ts)),
            MerkleTree.hash(key: k, record: .value(Value("w"), at: ts)),
            MerkleTree.hash(key: k, record: .value(Value("v"), at: Timestamp(physicalMillis: 2, logical: 0))),
            MerkleTree.hash(key: k, record: .value(Value("v"), at: ts, expiresAtMillis: 10)),
            MerkleTree.hash(key: k, record: .tombstone(at: ts)),
            MerkleTree.hash(key: k, record: .value(Value(""), at: ts)),
        ]
        #expect(Set(hashes).count == hashes.count)
    }
}
