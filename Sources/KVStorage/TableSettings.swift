/// Settings of the table layer: memtable, SSTable files, the block cache and
/// compaction. The engine embeds one of these in its own settings; every field
/// has a default suited to a node with a few GiB of RAM.
public struct TableSettings: Sendable, Equatable {
    /// Target size of an SSTable data block before it is cut, in bytes (uncompressed,
    /// before the 4-byte CRC trailer). A block holding one large entry may exceed it.
    /// Default 4096 (4 KiB).
    public var blockSizeBytes: Int
    /// Bloom filter bits per key in each SSTable. 10 bits gives ≈ 1 % false positives.
    /// 0 writes an empty filter (every lookup reads a block). Default 10 (bits/key).
    public var bloomBitsPerKey: Int
    /// Capacity of the shared decoded-block cache (CLOCK eviction), in bytes of block data.
    /// Default 67,108,864 (64 MiB).
    public var blockCacheBytes: Int
    /// Size at which a compaction closes one output SSTable and starts the next, in
    /// bytes of file written. Outputs are only cut between tokens, so a file may run
    /// slightly over. Default 67,108,864 (64 MiB).
    public var targetFileSizeBytes: Int
    /// How tables are chosen for compaction and when writes stall.
    public var compaction: CompactionSettings

    /// Settings with the defaults documented on each field.
    public init(
        blockSizeBytes: Int = 4096,
        bloomBitsPerKey: Int = 10,
        blockCacheBytes: Int = 64 << 20,
        targetFileSizeBytes: Int = 64 << 20,
        compaction: CompactionSettings = CompactionSettings()
    ) {
        self.blockSizeBytes = blockSizeBytes
        self.bloomBitsPerKey = bloomBitsPerKey
        self.blockCacheBytes = blockCacheBytes
        self.targetFileSizeBytes = targetFileSizeBytes
        self.compaction = compaction
    }

    /// The defaults above.
    public static let `default` = TableSettings()
}

/// Which compaction strategy a shard runs.
public enum CompactionStrategy: String, Sendable, Equatable, CaseIterable {
    /// Cassandra's STCS: merge ≥ `minThreshold` tables of similar size. Cheap writes,
    /// more tables per read. The default.
    case sizeTiered
    /// LevelDB/RocksDB style: L0 flushed tables, then levels ≥ 1 of non-overlapping
    /// tables, each level `levelSizeRatio` × larger. More rewriting, fewer tables per read.
    case leveled
}

/// Settings of compaction planning and purging (`CompactionPlanner`, `CompactionJob`).
public struct CompactionSettings: Sendable, Equatable {
    /// The strategy. Default `.sizeTiered`.
    public var strategy: CompactionStrategy
    /// Size-tiered: fewest similar-sized tables compacted together. Default 4 (tables).
    public var minThreshold: Int
    /// Size-tiered: most tables in one compaction. Default 32 (tables).
    public var maxThreshold: Int
    /// Size-tiered: a table joins a bucket when its size ≥ `bucketLow` × the bucket's
    /// average size. Default 0.5 (ratio).
    public var bucketLow: Double
    /// Size-tiered: … and ≤ `bucketHigh` × the bucket's average. Default 1.5 (ratio).
    public var bucketHigh: Double
    /// Size-tiered: tables smaller than this all share one bucket regardless of ratio.
    /// Default 52,428,800 (50 MiB).
    public var minSSTableSizeBytes: Int
    /// Leveled: L0 table count that triggers an L0 → L1 compaction. Default 4 (tables).
    public var level0CompactionTrigger: Int
    /// Leveled: target total size of L1, in bytes; level n targets this × ratio^(n-1).
    /// Default 268,435,456 (256 MiB).
    public var level1MaxBytes: Int
    /// Leveled: growth factor between consecutive levels. Default 10 (ratio).
    public var levelSizeRatio: Int
    /// Leveled: deepest level (levels are 0…maxLevel). Default 6.
    public var maxLevel: Int
    /// Table count (size-tiered: all tables; leveled: L0 tables) at which the engine
    /// should slow writes down. Default 20 (tables).
    public var slowdownTableCount: Int
    /// Table count (as above) at which the engine should stop accepting writes until
    /// compaction catches up. Default 36 (tables).
    public var stopTableCount: Int
    /// When no other compaction is due, a table whose tombstones are at least this
    /// fraction of its entries — all past the grace period, and with no other table able
    /// to hold older versions of its keys — is compacted alone to drop them (Cassandra's
    /// tombstone compaction). Default 0.2 (ratio); 0 disables.
    public var tombstoneCompactionRatio: Double
    /// A table must be at least this old (since written) before a tombstone compaction,
    /// so a table whose tombstones could not be dropped is not rewritten again and again.
    /// Default 86,400,000 (1 day), in milliseconds.
    public var tombstoneCompactionIntervalMillis: UInt64
    /// How long a tombstone (or an expired value) must be kept after its deletion
    /// (or expiry) time before compaction may drop it, so that repair can spread the
    /// delete to every replica first. Default 864,000,000 (10 days), in milliseconds.
    public var tombstoneGraceMillis: UInt64

    /// Settings with the defaults documented on each field.
    public init(
        strategy: CompactionStrategy = .sizeTiered,
        minThreshold: Int = 4,
        maxThreshold: Int = 32,
        bucketLow: Double = 0.5,
        bucketHigh: Double = 1.5,
        minSSTableSizeBytes: Int = 50 << 20,
        level0CompactionTrigger: Int = 4,
        level1MaxBytes: Int = 256 << 20,
        levelSizeRatio: Int = 10,
        maxLevel: Int = 6,
        slowdownTableCount: Int = 20,
        stopTableCount: Int = 36,
        tombstoneCompactionRatio: Double = 0.2,
        tombstoneCompactionIntervalMillis: UInt64 = 24 * 3600 * 1000,
        tombstoneGraceMillis: UInt64 = 10 * 24 * 3600 * 1000
    ) {
        self.strategy = strategy
        self.minThreshold = minThreshold
        self.maxThreshold = maxThreshold
        self.bucketLow = bucketLow
        self.bucketHigh = bucketHigh
        self.minSSTableSizeBytes = minSSTableSizeBytes
        self.level0CompactionTrigger = level0CompactionTrigger
        self.level1MaxBytes = level1MaxBytes
        self.levelSizeRatio = levelSizeRatio
        self.maxLevel = maxLevel
        self.slowdownTableCount = slowdownTableCount
        self.stopTableCount = stopTableCount
        self.tombstoneCompactionRatio = tombstoneCompactionRatio
        self.tombstoneCompactionIntervalMillis = tombstoneCompactionIntervalMillis
        self.tombstoneGraceMillis = tombstoneGraceMillis
    }
}
