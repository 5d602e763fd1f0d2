import KVCore

/// Where an older version of a key could still live outside a compaction: a live
/// table that is not among the inputs, or a memtable.
public struct OlderVersionSource: Sendable {
    /// Token span the source covers.
    public var tokens: ClosedRange<Token>
    /// Oldest record timestamp in the source.
    public var minTimestamp: Timestamp
    /// Optional exact-or-false-positive membership test (an SSTable's bloom filter);
    /// nil means "may contain any token in `tokens`".
    public var mayContain: (@Sendable (Token) -> Bool)?

    public init(tokens: ClosedRange<Token>, minTimestamp: Timestamp, mayContain: (@Sendable (Token) -> Bool)? = nil) {
        self.tokens = tokens
        self.minTimestamp = minTimestamp
        self.mayContain = mayContain
    }

    /// A source for a live table outside the compaction, using its bloom filter.
    public init(table: SSTableReader) {
        let metadata = table.metadata
        self.init(
            tokens: metadata.minToken...metadata.maxToken, minTimestamp: metadata.minTimestamp,
            mayContain: { [table] token in table.mayContain(token: token) })
    }

    /// A source for a memtable (nil when it is empty).
    public init?(memtable: Memtable) {
        guard let oldest = memtable.minTimestamp else { return nil }
        // Memtables are not indexed by token span; assume they may hold any token.
        self.init(tokens: Token.min...Token.max, minTimestamp: oldest)
    }
}

/// The rule deciding whether compaction may drop a tombstone or an expired value.
///
/// An entry is **purgeable** when both hold:
/// 1. *Grace has passed*: a tombstone's timestamp (physical ms) + `graceMillis` ≤ `nowMillis`,
///    or an expired value's `expiresAtMillis` + `graceMillis` ≤ `nowMillis`. Live values
///    are never purgeable. The grace lets repair spread the delete to every replica first.
/// 2. *Nothing older can resurface*: no source outside the compaction may hold an older
///    version of the key, i.e. there is no `OlderVersionSource` whose token span contains
///    the key's token, whose `minTimestamp` ≤ the entry's timestamp, and whose
///    `mayContain` (if any) says yes. (Versions inside the inputs are merged away with it.)
///
/// A pure value: time is passed in.
public struct PurgeRule: Sendable {
    public var nowMillis: UInt64
    public var graceMillis: UInt64
    /// Every live table not among the compaction's inputs, and every memtable.
    public var outside: [OlderVersionSource]

    public init(nowMillis: UInt64, graceMillis: UInt64, outside: [OlderVersionSource]) {
        self.nowMillis = nowMillis
        self.graceMillis = graceMillis
        self.outside = outside
    }

    /// A rule that never purges (e.g. when the outside set is unknown).
    public static let keepEverything = PurgeRule(nowMillis: 0, graceMillis: .max, outside: [])

    /// True when the grace period of a tombstone or expired value has passed.
    public func isPastGrace(_ record: Record) -> Bool {
        let deletedAt: UInt64
        if record.isTombstone {
            deletedAt = record.timestamp.physicalMillis
        } else if let expiry = record.expiresAtMillis, record.isExpired(nowMillis: nowMillis) {
            deletedAt = expiry
        } else {
            return false
        }
        let (purgeAt, overflow) = deletedAt.addingReportingOverflow(graceMillis)
        return !overflow && purgeAt <= nowMillis
    }

    /// True when some outside source may hold a version of the key at or before `timestamp`.
    public func olderVersionMayExist(token: Token, timestamp: Timestamp) -> Bool {
        outside.contains { source in
            source.tokens.contains(token) && source.minTimestamp <= timestamp
                && (source.mayContain?(token) ?? true)
        }
    }

    /// Both conditions above.
    public func isPurgeable(_ entry: Entry) -> Bool {
        isPastGrace(entry.record) && !olderVersionMayExist(token: entry.token, timestamp: entry.record.timestamp)
    }
}
