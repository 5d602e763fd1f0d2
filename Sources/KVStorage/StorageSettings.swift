import KVCore

/// Settings of one storage engine (one shard's LSM tree). Loaded from the
/// `[storage]` table of a node's config; every field has a default suited to a
/// node with a few GiB of RAM.
public struct StorageSettings: Sendable, Equatable {
    /// The write-ahead log: commit mode (`.sync` by default), segment size, recycling.
    public var wal: WALSettings
    /// Size at which the active memtable is frozen and handed to the flusher, in bytes
    /// (as counted by `Memtable.approximateBytes`). Default 67,108,864 (64 MiB).
    public var memtableBytes: Int
    /// Frozen memtables allowed to wait for the flusher; a write that would freeze one
    /// more waits (stalls) until a flush finishes. Default 2 (memtables).
    public var maxFrozenMemtables: Int
    /// Capacity of the row cache (newest record per recently read key), in bytes of
    /// keys and values; 0 disables it. Default 0 (off).
    public var rowCacheBytes: Int
    /// SSTables, block cache, compaction strategy and its write-stall thresholds.
    public var tables: TableSettings
    /// Key and value size limits enforced by `apply`. Default 1 KiB keys, 1 MiB values.
    public var limits: Limits
    /// Delay added to each write batch while the table count is at or above
    /// `tables.compaction.slowdownTableCount` (below the hard stop), giving compaction
    /// time to catch up, in microseconds. Default 1,000 (1 ms).
    public var slowdownDelayMicros: Int
    /// Run the compactor in the background after flushes. When false, compaction
    /// happens only on `compact()` and table-count stalls are disabled. Default true.
    public var backgroundCompaction: Bool
    /// Map and touch one memtable's worth of arena memory when the first engine of the
    /// process opens, so the kernel zeroes those pages then and not under the first
    /// writes (a page fault per 2 MiB of fresh memtable costs a write path about 4 % of
    /// its CPU while a fresh process fills its first memtable). The memory is the
    /// memtable's own, reserved early, as ScyllaDB reserves its memory at start.
    /// Default true.
    public var prefaultMemtable: Bool = true

    public init(
        wal: WALSettings = WALSettings(),
        memtableBytes: Int = 64 << 20,
        maxFrozenMemtables: Int = 2,
        rowCacheBytes: Int = 0,
        tables: TableSettings = .default,
        limits: Limits = .default,
        slowdownDelayMicros: Int = 1_000,
        backgroundCompaction: Bool = true
    ) {
        self.slowdownDelayMicros = slowdownDelayMicros
        self.wal = wal
        self.memtableBytes = memtableBytes
        self.maxFrozenMemtables = maxFrozenMemtables
        self.rowCacheBytes = rowCacheBytes
        self.tables = tables
        self.limits = limits
        self.backgroundCompaction = backgroundCompaction
    }

    /// Shorthand for `wal.commitMode`.
    public var commitMode: CommitMode {
        get { wal.commitMode }
        set { wal.commitMode = newValue }
    }

    /// The defaults above.
    public static let `default` = StorageSettings()
}
