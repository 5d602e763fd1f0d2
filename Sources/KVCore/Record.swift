/// What a key holds at one version: a value or a tombstone, the version's
/// timestamp, and an optional expiry.
public struct Record: Hashable, Sendable {
    /// A value, or the tombstone left by a delete.
    public enum Payload: Hashable, Sendable {
        case value(Value)
        case tombstone
    }

    public var payload: Payload
    /// The version; newest wins (last write wins).
    public var timestamp: Timestamp
    /// Wall-clock milliseconds after which the value reads as absent; `nil` = never expires.
    public var expiresAtMillis: UInt64?

    @inlinable public init(payload: Payload, timestamp: Timestamp, expiresAtMillis: UInt64? = nil) {
        self.payload = payload
        self.timestamp = timestamp
        self.expiresAtMillis = expiresAtMillis
    }

    /// A live value written at `timestamp`.
    public static func value(_ value: Value, at timestamp: Timestamp, expiresAtMillis: UInt64? = nil) -> Record {
        Record(payload: .value(value), timestamp: timestamp, expiresAtMillis: expiresAtMillis)
    }

    /// A delete marker written at `timestamp`.
    public static func tombstone(at timestamp: Timestamp) -> Record {
        Record(payload: .tombstone, timestamp: timestamp)
    }

    @inlinable public var isTombstone: Bool {
        if case .tombstone = payload { return true }
        return false
    }

    /// The length of the value in bytes; 0 for a tombstone. (Reads the count in place, where
    /// `value?.bytes.count` copies the value out first.)
    @inlinable public var valueByteCount: Int {
        switch payload {
        case .value(let v): return v.bytes.count
        case .tombstone: return 0
        }
    }

    /// The value, if this is a live value (expiry not considered).
    @inlinable public var value: Value? {
        if case let .value(v) = payload { return v }
        return nil
    }

    /// True when the record has an expiry at or before `nowMillis`.
    @inlinable public func isExpired(nowMillis: UInt64) -> Bool {
        guard let expiresAtMillis else { return false }
        return expiresAtMillis <= nowMillis
    }

    /// The value a reader sees at `nowMillis`: nil for tombstones and expired values.
    @inlinable public func visibleValue(nowMillis: UInt64) -> Value? {
        isExpired(nowMillis: nowMillis) ? nil : value
    }

    /// Last-write-wins with a deterministic tie-break, so every replica picks the
    /// same winner: newer timestamp; on a tie a tombstone beats a value; between two
    /// values the bytewise larger one; then the later expiry (none = latest).
    public func supersedes(_ other: Record) -> Bool {
        if timestamp != other.timestamp { return timestamp > other.timestamp }
        switch (payload, other.payload) {
        case (.tombstone, .value): return true
        case (.value, .tombstone): return false
        case (.tombstone, .tombstone): return false
        case let (.value(a), .value(b)):
            if a.bytes != b.bytes { return b.bytes.lexicographicallyPrecedes(a.bytes) }
            return (expiresAtMillis ?? .max) > (other.expiresAtMillis ?? .max)
        }
    }

    /// The winner of `a` and `b` under `supersedes(_:)`.
    public static func newest(_ a: Record, _ b: Record) -> Record {
        b.supersedes(a) ? b : a
    }
}
