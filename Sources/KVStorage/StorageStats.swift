/// A snapshot of one engine's sizes, counts and efficiency figures, returned by
/// `StorageEngine.stats()` (for `/metrics` and the benchmark). Counters run from
/// the moment the engine was opened.
public struct StorageStats: Sendable, Equatable {
    /// Live SSTables.
    public var tableCount: Int
    /// Live SSTables per level (index = level).
    public var tablesPerLevel: [Int]
    /// Bytes of live SSTable files.
    public var tableBytes: UInt64
    /// Entries in live SSTables (versions, tombstones included; a key may be counted more than once).
    public var tableEntries: UInt64
    /// Tombstones in live SSTables.
    public var tableTombstones: UInt64
    /// Bytes held by the active and frozen memtables.
    public var memtableBytes: Int
    /// Keys in the active and frozen memtables.
    public var memtableEntries: Int
    /// Frozen memtables waiting for the flusher.
    public var frozenMemtables: Int
    /// Bytes of keys and values applied by callers.
    public var userBytesWritten: UInt64
    /// Bytes written to disk: WAL frames, flushed and compacted SSTables, manifests.
    public var diskBytesWritten: UInt64
    /// Memtable flushes and compactions finished.
    public var flushes: UInt64
    public var compactions: UInt64
    /// Writes that had to wait for a flush or compaction (back-pressure).
    public var stalls: UInt64
    /// Tables moved aside after a checksum failure.
    public var quarantinedTables: Int
    /// Block cache hits and misses.
    public var blockCacheHits: UInt64
    public var blockCacheMisses: UInt64
    /// Row cache hits and misses (0 when the row cache is off).
    public var rowCacheHits: UInt64
    public var rowCacheMisses: UInt64
    /// `fdatasync` calls on the WAL, and the frames (batches) they made durable.
    public var walSyncs: UInt64
    public var walSyncedBatches: UInt64

    /// Disk bytes written per byte of user data (≥ 1 once anything was flushed).
    public var writeAmplification: Double {
        userBytesWritten == 0 ? 0 : Double(diskBytesWritten) / Double(userBytesWritten)
    }
    /// Fraction of block lookups served from the cache.
    public var blockCacheHitRate: Double {
        let total = blockCacheHits + blockCacheMisses
        return total == 0 ? 0 : Double(blockCacheHits) / Double(total)
    }
    /// Fraction of row lookups served from the row cache.
    public var rowCacheHitRate: Double {
        let total = rowCacheHits + rowCacheMisses
        return total == 0 ? 0 : Double(rowCacheHits) / Double(total)
    }
    /// Mean number of batches acknowledged by one WAL sync (group commit's effect).
    public var walMeanGroupSize: Double {
        walSyncs == 0 ? 0 : Double(walSyncedBatches) / Double(walSyncs)
    }
}
