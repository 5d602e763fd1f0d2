import KVCore

/// Where an older version of a key could still live outside a compaction: a live
/// table that is not among the inputs, or a memtable.
public struct OlderVersionSource: Sendable {
    /// Answers "may this source hold a version of (token, key) with timestamp ≤ t?".
    /// False positives only cost a kept tombstone; false negatives would resurrect data.
    private let check: @Sendable (Token, Key, Timestamp) -> Bool

    /// A source known only by bounds: it may hold any key whose token is in `tokens`,
    /// at any timestamp ≥ `minTimestamp`; `mayContain` (a bloom filter) can narrow it.
    /// Use this for the active memtable, which another thread may not read.
    public init(tokens: ClosedRange<Token>, minTimestamp: Timestamp, mayContain: (@Sendable (Token) -> Bool)? = nil) {
        check = { token, _, timestamp in
            tokens.contains(token) && minTimestamp <= timestamp && (mayContain?(token) ?? true)
        }
    }

    /// A live table outside the compaction: token bounds, oldest timestamp, bloom filter.
    public init(table: SSTableReader) {
        let metadata = table.metadata
        self.init(
            tokens: metadata.minToken...metadata.maxToken, minTimestamp: metadata.minTimestamp,
            mayContain: { [table] token in table.metadata.entryCount > 0 && table.mayContain(token: token) })
    }

    /// Any memtable, by bounds: it may hold any token, at timestamps ≥ its oldest one
    /// (read now, on the writer's executor). Nil when the memtable is empty. A write that
    /// arrives later with an older timestamp (repair, hints) is not covered: check again
    /// before installing the compaction's outputs, or use `init(frozenMemtable:)`.
    public init?(memtable: Memtable) {
        guard let oldest = memtable.minTimestamp else { return nil }
        self.init(tokens: Token.min...Token.max, minTimestamp: oldest)
    }

    /// A frozen memtable: an exact lookup (its version of the key, if any, is compared).
    public init(frozenMemtable memtable: Memtable) {
        precondition(memtable.isFrozen, "only a frozen memtable may be read off its writer")
        check = { [memtable] token, key, timestamp in
            memtable.get(key: key, token: token).map { $0.timestamp <= timestamp } ?? false
        }
    }

    /// True when the source may hold a version of the key at or before `timestamp`.
    public func mayHoldVersion(token: Token, key: Key, atOrBefore timestamp: Timestamp) -> Bool {
        check(token, key, timestamp)
    }
}

/// The rule deciding whether compaction may drop a tombstone or an expired value.
///
/// An entry is **purgeable** when both hold:
/// 1. *Grace has passed*: a tombstone's timestamp (physical ms) + `graceMillis` ≤ `nowMillis`,
///    or an expired value's `expiresAtMillis` + `graceMillis` ≤ `nowMillis`. Live values
///    are never purgeable. The grace lets repair spread the delete to every replica first.
/// 2. *Nothing older can resurface*: no source outside the compaction may hold an older
///    version of the key: no `OlderVersionSource` answers `mayHoldVersion(token:key:atOrBefore:)`
///    with yes for the entry's timestamp (for a table: the token is in its span, its
///    oldest timestamp is ≤ the entry's, and its bloom filter may contain the key).
///    Versions inside the inputs are merged away with the entry, so they cannot resurface.
///
/// A pure value: time is passed in.
public struct PurgeRule: Sendable {
    /// Wall-clock time of the compaction, in ms since the epoch.
    public var nowMillis: UInt64
    /// `CompactionSettings.tombstoneGraceMillis`.
    public var graceMillis: UInt64
    /// Every live table not among the compaction's inputs, and every memtable.
    public var outside: [OlderVersionSource]

    /// A rule at `nowMillis` with these outside sources.
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
    public func olderVersionMayExist(token: Token, key: Key, timestamp: Timestamp) -> Bool {
        outside.contains { $0.mayHoldVersion(token: token, key: key, atOrBefore: timestamp) }
    }

    /// Both conditions above.
    public func isPurgeable(_ entry: Entry) -> Bool {
        isPastGrace(entry.record)
            && !olderVersionMayExist(token: entry.token, key: entry.key, timestamp: entry.record.timestamp)
    }
}
