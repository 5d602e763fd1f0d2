import KVCore
import KVStorage

/// One token range this node replicates, and its repair state: the Merkle tree of the
/// range as last built from storage, and when. Anti-entropy compares it with the same
/// range's tree on each replica partner (`MerkleTree.differingRanges`) and streams only
/// the differing leaves.
///
/// Building scans every shard over the range (the range is one contiguous slice of
/// each engine's (token, key) order): O(keys in range), hashing each newest version once.
public actor VnodeRange {
    /// The tokens covered.
    public nonisolated let range: TokenRange
    private let replica: LocalReplica
    private let depth: Int
    /// The tree from the last build, if any.
    public private(set) var tree: MerkleTree?
    /// Wall-clock time of the last build (ms), if any.
    public private(set) var builtAtMillis: UInt64?

    public init(range: TokenRange, replica: LocalReplica, depth: Int = MerkleTree.maxDepth) {
        self.range = range
        self.replica = replica
        self.depth = depth
    }

    /// Scans the range in every shard and builds its Merkle tree (tombstones included:
    /// a replica missing a delete differs).
    public func buildTree(nowMillis: UInt64? = nil) async throws(KVError) -> MerkleTree {
        var tree = MerkleTree(range: range, depth: depth)
        for tokens in range.closedPieces {
            for shard in replica.shards {
                var cursor: ScanCursor?
                repeat {
                    let page = try await shard.engine.scan(tokens: tokens, after: cursor, limit: 4096)
                    for e in page.entries { _ = tree.add(key: e.key, record: e.record) }
                    cursor = page.resume
                } while cursor != nil
            }
        }
        self.tree = tree
        builtAtMillis = nowMillis
        return tree
    }
}
