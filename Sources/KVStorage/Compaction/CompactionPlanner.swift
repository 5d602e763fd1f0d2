import KVCore

/// What the planner knows about one live SSTable: identity, level, size and the
/// bounds written in its metadata. The engine builds these from its manifest.
public struct TableDescriptor: Sendable, Equatable {
    /// The engine's table number (unique within a shard).
    public var id: UInt64
    /// Level (leveled compaction); size-tiered keeps every table at level 0.
    public var level: Int
    /// File size in bytes.
    public var sizeBytes: UInt64
    /// Token of the table's first entry.
    public var minToken: Token
    /// Token of the table's last entry.
    public var maxToken: Token
    /// Oldest record timestamp in the table.
    public var minTimestamp: Timestamp
    /// Newest record timestamp in the table.
    public var maxTimestamp: Timestamp
    /// Entries (keys) in the table.
    public var entryCount: UInt64
    /// Entries that are tombstones.
    public var tombstoneCount: UInt64
    /// Wall-clock ms the table was written.
    public var createdAtMillis: UInt64

    /// A descriptor from explicit fields (tests, or a manifest that stores them).
    public init(
        id: UInt64, level: Int, sizeBytes: UInt64, minToken: Token, maxToken: Token,
        minTimestamp: Timestamp = .zero, maxTimestamp: Timestamp = .zero, entryCount: UInt64 = 0,
        tombstoneCount: UInt64 = 0, createdAtMillis: UInt64 = 0
    ) {
        self.id = id
        self.level = level
        self.sizeBytes = sizeBytes
        self.minToken = minToken
        self.maxToken = maxToken
        self.minTimestamp = minTimestamp
        self.maxTimestamp = maxTimestamp
        self.entryCount = entryCount
        self.tombstoneCount = tombstoneCount
        self.createdAtMillis = createdAtMillis
    }

    /// A descriptor from a written or opened table's metadata.
    public init(id: UInt64, level: Int, sizeBytes: UInt64, metadata: SSTableMetadata) {
        self.init(
            id: id, level: level, sizeBytes: sizeBytes, minToken: metadata.minToken, maxToken: metadata.maxToken,
            minTimestamp: metadata.minTimestamp, maxTimestamp: metadata.maxTimestamp,
            entryCount: metadata.entryCount, tombstoneCount: metadata.tombstoneCount,
            createdAtMillis: metadata.createdAtMillis)
    }

    /// Inclusive token span.
    public var tokens: ClosedRange<Token> { minToken...maxToken }

    /// True when the token spans intersect.
    public func overlaps(_ tokens: ClosedRange<Token>) -> Bool { self.tokens.overlaps(tokens) }
}

/// One compaction to run: merge `inputs` into new tables at `outputLevel`.
public struct CompactionPlan: Sendable, Equatable {
    /// Why this compaction was chosen.
    public enum Reason: Sendable, Equatable {
        /// Size-tiered: a bucket of similar-sized tables reached `minThreshold`.
        case sizeTieredBucket(averageBytes: UInt64)
        /// Leveled: L0 reached `level0CompactionTrigger` tables.
        case level0Full(tables: Int)
        /// Leveled: a level exceeded its target size (score = bytes / target).
        case levelOversized(level: Int, score: Double)
        /// One table rewritten alone to drop its purgeable tombstones.
        case tombstones(ratio: Double)
    }

    /// Ids of the tables to merge (all of them are replaced by the outputs).
    public var inputs: [UInt64]
    /// Level the outputs belong to.
    public var outputLevel: Int
    /// Why it was chosen (for logs and metrics).
    public var reason: Reason
}

/// How hard the engine should push back on writes because compaction is behind.
public enum WriteStall: Sendable, Equatable, Comparable {
    /// Accept writes normally.
    case none
    /// Delay writes (e.g. a short sleep per batch) so compaction can catch up.
    case slowdown
    /// Hold writes until the table count falls (answer `KVError.overloaded` if waiting too long).
    case stop
}

/// Chooses the next compaction from a description of the live tables. A pure value:
/// no I/O, no clock; the same tables in give the same plan out.
public struct CompactionPlanner: Sendable {
    /// Thresholds and strategy.
    public var settings: CompactionSettings

    /// A planner with these settings.
    public init(settings: CompactionSettings = CompactionSettings()) {
        self.settings = settings
    }

    /// The next compaction worth running, or nil. Tables in `busy` (already being
    /// compacted) are never chosen, and a leveled plan that would need one is not
    /// returned. With `nowMillis`, a table full of purgeable tombstones is compacted
    /// alone when nothing else is due (see `tombstoneCompactionRatio`).
    public func nextCompaction(
        tables: [TableDescriptor], busy: Set<UInt64> = [], nowMillis: UInt64? = nil
    ) -> CompactionPlan? {
        let plan: CompactionPlan?
        switch settings.strategy {
        case .sizeTiered:
            plan = SizeTiered(settings: settings).plan(tables.filter { !busy.contains($0.id) })
        case .leveled:
            plan = Leveled(settings: settings).plan(tables, busy: busy)
        }
        if let plan { return plan }
        guard let nowMillis else { return nil }
        return tombstoneCompaction(tables: tables, busy: busy, nowMillis: nowMillis)
    }

    /// The table with the highest tombstone ratio ≥ `tombstoneCompactionRatio` whose
    /// tombstones can all be dropped: every record is past the grace period (its newest
    /// timestamp is), it was written at least `tombstoneCompactionIntervalMillis` ago, and
    /// no other table overlapping its tokens holds data at or before its newest timestamp.
    func tombstoneCompaction(tables: [TableDescriptor], busy: Set<UInt64>, nowMillis: UInt64) -> CompactionPlan? {
        guard settings.tombstoneCompactionRatio > 0 else { return nil }
        let candidates = tables.filter { table in
            guard !busy.contains(table.id), table.entryCount > 0 else { return false }
            let ratio = Double(table.tombstoneCount) / Double(table.entryCount)
            let (graceEnd, overflow) = table.maxTimestamp.physicalMillis.addingReportingOverflow(
                settings.tombstoneGraceMillis)
            return ratio >= settings.tombstoneCompactionRatio && !overflow && graceEnd <= nowMillis
                && table.createdAtMillis &+ settings.tombstoneCompactionIntervalMillis <= nowMillis
                && !tables.contains { other in
                    other.id != table.id && other.overlaps(table.tokens) && other.minTimestamp <= table.maxTimestamp
                }
        }
        func ratio(_ t: TableDescriptor) -> Double { Double(t.tombstoneCount) / Double(t.entryCount) }
        guard let best = candidates.max(by: { (ratio($0), $1.id) < (ratio($1), $0.id) }) else { return nil }
        return CompactionPlan(inputs: [best.id], outputLevel: best.level, reason: .tombstones(ratio: ratio(best)))
    }

    /// The back-pressure the engine should apply: size-tiered counts all tables,
    /// leveled counts L0 tables; compared with `slowdownTableCount` / `stopTableCount`.
    public func writeStall(tables: [TableDescriptor]) -> WriteStall {
        let count = settings.strategy == .leveled ? tables.filter { $0.level == 0 }.count : tables.count
        if count >= settings.stopTableCount { return .stop }
        if count >= settings.slowdownTableCount { return .slowdown }
        return .none
    }
}
