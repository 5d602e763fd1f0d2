import KVCore

/// How many replicas a request waits for. `eventual` (= `one`): one replica (reads
/// prefer the local one); `strong` (= `quorum`): a majority; `all`: every replica;
/// `default`: the level the node is configured with. On a single node (replication 1)
/// every level is the local engine. (Named for reads, where the API introduced it; it
/// applies to writes too.)
public enum ReadConsistency: String, Sendable, Equatable, CaseIterable {
    case eventual
    case strong
    case all
    case `default`

    /// Parses `one`/`eventual`, `quorum`/`strong`, `all` (any letter case); nil otherwise.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "one", "eventual": self = .eventual
        case "quorum", "strong": self = .strong
        case "all": self = .all
        default: return nil
        }
    }
}

/// Counters a service reports for `INFO` and the health endpoint.
public struct ServiceStatistics: Sendable, Equatable {
    /// Storage shards (one LSM engine each).
    public var shards: Int
    /// Records in memtables and SSTables across shards, counting every version and
    /// tombstone not yet compacted away: an upper bound on live keys.
    public var storedEntries: UInt64
    /// Whether the service takes requests (false once shutdown has begun).
    public var accepting: Bool

    public init(shards: Int, storedEntries: UInt64, accepting: Bool) {
        self.shards = shards
        self.storedEntries = storedEntries
        self.accepting = accepting
    }
}

/// What the client-facing front ends (the JSON item API and RESP) need from a
/// node: read, write and delete by key, with timestamps assigned by the node's
/// hybrid logical clock. `SingleNode` implements it over local shards; a cluster
/// coordinator implements it over replicas.
///
/// Every call may suspend (it may hop to the shard that owns the key) and
/// throws `KVError` (`.closed` while shutting down, `.overloaded` when queues are
/// full, size errors for keys and values over `Limits`).
public protocol KeyValueService: Sendable {
    /// The limits on keys and values this service enforces.
    var limits: Limits { get }

    /// Wall-clock milliseconds since the Unix epoch, the time base of expiries.
    func nowMillis() -> UInt64

    /// The newest record for `key` (it may be a tombstone or expired; the caller
    /// decides what is visible), or nil when the key was never written.
    func read(_ key: Key, consistency: ReadConsistency) async throws(KVError) -> Record?

    /// Writes `value` (or a tombstone when nil) for `key`, expiring at
    /// `expiresAtMillis` (nil = never), and returns the write's timestamp.
    func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?) async throws(KVError) -> Timestamp

    /// `read` without suspending, when the service can answer at once on the calling
    /// thread (a single node: the key's shard runs on this loop); nil when it cannot, and
    /// then the caller awaits `read`. The front ends try this first because every `await`
    /// on the request path costs a task switch, even one that does not suspend.
    func readImmediately(_ key: Key, consistency: ReadConsistency) -> Result<Record?, KVError>?

    /// `write` without suspending, when the write needs no wait (see `readImmediately`):
    /// its timestamp or error. Nil when it would have to wait: nothing was written, and
    /// the caller awaits `write`.
    func writeImmediately(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency)
        -> Result<Timestamp, KVError>?

    /// Writes as by `write(_:value:expiresAtMillis:)`, waiting for `consistency`'s
    /// worth of replicas (a single node ignores it: it has one).
    func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency) async throws(KVError)
        -> Timestamp

    /// Writes several keys, each as by `write`, in as few storage batches as the
    /// shard layout allows. Returns the timestamp of the writes.
    func writeMany(_ items: [(Key, Value)]) async throws(KVError) -> Timestamp

    /// Current counters.
    func statistics() async -> ServiceStatistics
}

extension KeyValueService {
    /// A service that always waits (a cluster's replicas) never answers at once.
    public func readImmediately(_ key: Key, consistency: ReadConsistency) -> Result<Record?, KVError>? { nil }

    /// A service that always waits (a cluster's replicas) never writes at once.
    public func writeImmediately(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency)
        -> Result<Timestamp, KVError>?
    { nil }

    /// `readImmediately`, else `read`: what the front ends call. (Inlined into them, so the
    /// immediate path has no `await` at all.)
    @inline(__always)
    func readSoon(_ key: Key, consistency: ReadConsistency) async throws(KVError) -> Record? {
        if let now = readImmediately(key, consistency: consistency) { return try now.get() }
        return try await read(key, consistency: consistency)
    }

    /// `writeImmediately`, else `write`: what the front ends call (see `readSoon`).
    @inline(__always)
    func writeSoon(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency) async throws(KVError)
        -> Timestamp
    {
        if let now = writeImmediately(key, value: value, expiresAtMillis: expiresAtMillis, consistency: consistency) {
            return try now.get()
        }
        return try await write(key, value: value, expiresAtMillis: expiresAtMillis, consistency: consistency)
    }

    /// A service with one replica writes the same at every level.
    public func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency) async throws(KVError)
        -> Timestamp
    {
        try await write(key, value: value, expiresAtMillis: expiresAtMillis)
    }
}
