import KVCore

/// Why two Merkle trees cannot be compared.
public enum MerkleTreeError: Error, Sendable, Equatable {
    /// The trees cover different ranges or have different depths.
    case shapeMismatch(range: TokenRange, depth: Int, otherRange: TokenRange, otherDepth: Int)
}

/// A Merkle tree over one token range, for anti-entropy: two replicas build a tree
/// over the same range from their data, exchange hashes top-down, and stream only
/// the sub-ranges whose hashes differ.
///
/// The range is cut into `2^depth` leaves of (nearly) equal token width. A leaf's hash
/// combines the hashes of the (key, record) entries whose tokens fall in it by
/// wrapping addition, so entries can be added one at a time in any order (the tree of
/// a replica equals another's exactly when both hold the same entries, up to 64-bit
/// collisions). Inner nodes hash their two children (XXH64 of 16 bytes), computed
/// on demand.
///
/// Costs: 8 bytes per leaf (256 KiB at the maximum depth 15); `add` is O(1) plus
/// hashing the entry; `levels` and `differingRanges` are O(leaves).
public struct MerkleTree: Sendable, Equatable {
    /// The deepest tree allowed: 2^15 = 32,768 leaves.
    public static let maxDepth = 15

    /// The covered range.
    public let range: TokenRange
    /// log2 of the number of leaves.
    public let depth: Int
    /// The leaf hashes; 0 for a leaf with no entries.
    public private(set) var leaves: [UInt64]
    /// How many entries were added.
    public private(set) var entryCount = 0

    /// An empty tree over `range` with `2^depth` leaves (`depth` in 0...15; default 15).
    public init(range: TokenRange, depth: Int = MerkleTree.maxDepth) {
        precondition((0...Self.maxDepth).contains(depth), "Merkle tree depth must be in 0...\(Self.maxDepth)")
        self.range = range
        self.depth = depth
        self.leaves = [UInt64](repeating: 0, count: 1 << depth)
    }

    /// The leaf that `token` falls in; nil when the token is outside the range.
    public func leafIndex(for token: Token) -> Int? {
        guard range.contains(token) else { return nil }
        let offset = UInt128(token.rawValue &- range.start.rawValue &- 1)
        return Int(offset * UInt128(leaves.count) / range.width)
    }

    /// The token range of leaf `index`; nil for a leaf that holds no token (when the
    /// range has fewer tokens than the tree has leaves).
    public func leafRange(_ index: Int) -> TokenRange? {
        let count = UInt128(leaves.count)
        // Leaf i holds the offsets o (token = start + 1 + o) with ⌊o·L/W⌋ = i,
        // i.e. o in [⌈i·W/L⌉, ⌈(i+1)·W/L⌉).
        let lo = (UInt128(index) * range.width + count - 1) / count
        let hi = (UInt128(index + 1) * range.width + count - 1) / count
        let s = range.start.rawValue &+ UInt64(truncatingIfNeeded: lo)
        let e = range.start.rawValue &+ UInt64(truncatingIfNeeded: hi)
        if lo == hi { return nil }
        return TokenRange(start: Token(rawValue: s), end: Token(rawValue: e))
    }

    /// Adds one entry. Entries outside the range are ignored and return false.
    @discardableResult
    public mutating func add(key: Key, record: Record) -> Bool {
        add(token: key.token, entryHash: Self.hash(key: key, record: record))
    }

    /// Adds an entry by its token and precomputed hash (`MerkleTree.hash(key:record:)`).
    @discardableResult
    public mutating func add(token: Token, entryHash: UInt64) -> Bool {
        guard let i = leafIndex(for: token) else { return false }
        leaves[i] &+= entryHash
        entryCount += 1
        return true
    }

    /// The hash of one entry: XXH64 over the key's length and bytes, the timestamp,
    /// the expiry and the payload (a tag, and the value's bytes), so any difference in
    /// version, expiry or value changes it.
    public static func hash(key: Key, record: Record) -> UInt64 {
        var w = ByteWriter(capacity: key.bytes.count + 32)
        w.write(lengthPrefixed: key.bytes)
        w.write(littleEndian: record.timestamp.rawValue)
        w.write(littleEndian: record.expiresAtMillis ?? .max)
        switch record.payload {
        case .tombstone:
            w.write(UInt8(0))
        case let .value(v):
            w.write(UInt8(1))
            w.write(bytes: v.bytes)
        }
        // A 0 entry hash would be invisible in the sum; map it to a fixed non-zero value.
        let h = w.bytes.withUnsafeBytes { XXH64.hash($0) }
        return h == 0 ? 1 : h
    }

    private static func combine(_ a: UInt64, _ b: UInt64) -> UInt64 {
        if a == 0 && b == 0 { return 0 }  // empty subtrees stay 0 (cheap to compare)
        var pair = (a.littleEndian, b.littleEndian)
        return withUnsafeBytes(of: &pair) { XXH64.hash($0) }
    }

    /// Every level of the tree, root first: `levels[0]` is `[root]`, `levels[depth]`
    /// the leaves. This is what replicas exchange (level by level, or whole). O(leaves).
    public var levels: [[UInt64]] {
        var result = [leaves]
        while result[0].count > 1 {
            let below = result[0]
            result.insert((0..<(below.count / 2)).map { Self.combine(below[2 * $0], below[2 * $0 + 1]) }, at: 0)
        }
        return result
    }

    /// The root hash: equal roots mean equal data (up to hash collisions).
    public var rootHash: UInt64 { levels[0][0] }

    /// The sub-ranges where `self` and `other` differ, adjacent leaves merged, in
    /// token order from `range.start`. Compares top-down, descending only into
    /// differing subtrees. Throws when the trees have different ranges or depths.
    public func differingRanges(from other: MerkleTree) throws(MerkleTreeError) -> [TokenRange] {
        guard range == other.range, depth == other.depth else {
            throw .shapeMismatch(range: range, depth: depth, otherRange: other.range, otherDepth: other.depth)
        }
        let mine = levels
        let theirs = other.levels
        var differingLeaves: [Int] = []
        func descend(level: Int, index: Int) {
            guard mine[level][index] != theirs[level][index] else { return }
            if level == depth {
                differingLeaves.append(index)
            } else {
                descend(level: level + 1, index: 2 * index)
                descend(level: level + 1, index: 2 * index + 1)
            }
        }
        descend(level: 0, index: 0)
        var ranges: [TokenRange] = []
        var runStart: Int?
        var previous = -2
        for leaf in differingLeaves {
            if leaf != previous + 1 {
                if let s = runStart { ranges.append(span(s, previous)) }
                runStart = leaf
            }
            previous = leaf
        }
        if let s = runStart { ranges.append(span(s, previous)) }
        return ranges
    }

    /// The range from the start of leaf `first` to the end of leaf `last` (both hold
    /// entries, as their hashes differ, so neither is an empty leaf).
    private func span(_ first: Int, _ last: Int) -> TokenRange {
        if first == 0 && last == leaves.count - 1 { return range }
        return TokenRange(start: leafRange(first)!.start, end: leafRange(last)!.end)
    }
}
