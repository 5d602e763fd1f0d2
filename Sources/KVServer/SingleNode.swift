import KVCluster
import KVCore
import KVRuntime
import KVStorage
import Logging
import Synchronization

/// A single kvd node with replication 1: one `StorageEngine` shard per event
/// loop, keys routed to a shard by token, timestamps from one per-node hybrid
/// logical clock (seeded on open with the newest stored timestamp). The `KeyValueService` behind `kvd serve`'s HTTP and RESP APIs.
///
/// A request handled on loop L whose key belongs to L's shard runs entirely on
/// L's thread; otherwise the engine call hops to the owning loop and back (one
/// cross-thread message each way). Both consistency levels read the local
/// engine, since there is one replica.
public final class SingleNode: KeyValueService, Sendable {
    /// One shard per event loop, in loop order; shard i owns the i-th of `shards.count` equal token ranges.
    public let shards: [Shard]
    /// Key and value limits (also enforced by the engines).
    public let limits: Limits
    /// Where the node logs.
    public let logger: Logger
    private let wallClock: any WallClock
    private let clock: Mutex<HybridLogicalClock>
    private let accepting = Atomic<Bool>(true)

    private init(shards: [Shard], limits: Limits, wallClock: any WallClock, logger: Logger, newest: Timestamp) {
        self.shards = shards
        self.limits = limits
        self.wallClock = wallClock
        self.logger = logger
        self.clock = Mutex(HybridLogicalClock(last: newest))
    }

    /// Opens (or creates) one engine per loop of `loops` under `dataDirectory`,
    /// each opened on and bound to its loop's executor. Cost: the engines' recovery
    /// (WAL replay), in parallel across loops.
    ///
    /// Throws `KVError.invalidArgument` when the directory holds a different number
    /// of shards than `loops.count` (its keys would be routed to the wrong shard).
    public static func open(
        dataDirectory: String, loops: [EventLoop], storage: StorageSettings,
        wallClock: any WallClock = SystemWallClock(), logger: Logger
    ) async throws(KVError) -> SingleNode {
        let opened = try await Shard.openAll(
            dataDirectory: dataDirectory, loops: loops, storage: storage, wallClock: wallClock, logger: logger)
        // The clock starts past every stored version, whatever the wall clock says.
        var newest = Timestamp.zero
        for shard in opened {
            if let t = await shard.engine.newestTimestamp() { newest = max(newest, t) }
        }
        logger.info("opened \(opened.count) shards under \(dataDirectory); newest stored timestamp \(newest)")
        return SingleNode(shards: opened, limits: storage.limits, wallClock: wallClock, logger: logger, newest: newest)
    }

    /// The shard that owns `key`.
    @inlinable public func shard(for key: Key) -> Shard {
        shards[Shard.index(of: key.token, count: shards.count)]
    }

    /// The node's wall clock, in milliseconds since the Unix epoch.
    public func nowMillis() -> UInt64 { wallClock.nowMillis() }

    /// A new timestamp from the node's clock.
    public func nextTimestamp() -> Timestamp {
        let wall = wallClock.nowMillis()
        return clock.withLock { $0.now(wallMillis: wall) }
    }

    /// Reads from the owning shard (both consistency levels: there is one replica).
    public func read(_ key: Key, consistency: ReadConsistency) async throws(KVError) -> Record? {
        guard accepting.load(ordering: .relaxed) else { throw .closed }
        return try await shard(for: key).engine.read(key)
    }

    /// Reads in place when the owning shard runs on the calling loop.
    public func readImmediately(_ key: Key, consistency: ReadConsistency) -> Result<Record?, KVError>? {
        guard accepting.load(ordering: .relaxed) else { return .failure(.closed) }
        return shard(for: key).engine.readImmediately(key)
    }

    /// Stamps the write with the node's HLC and applies it on the owning shard (durable per the commit mode).
    public func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?) async throws(KVError) -> Timestamp {
        guard accepting.load(ordering: .relaxed) else { throw .closed }
        let (shard, entry) = stamped(key, value: value, expiresAtMillis: expiresAtMillis)
        try await shard.engine.apply([entry])  // in place itself on the shard's loop
        return entry.record.timestamp
    }

    /// Writes in place when the owning shard runs on the calling loop and the write has
    /// nothing to wait for (commit mode `periodic`, no back-pressure).
    public func writeImmediately(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency)
        -> Result<Timestamp, KVError>?
    {
        guard accepting.load(ordering: .relaxed) else { return .failure(.closed) }
        let (shard, entry) = stamped(key, value: value, expiresAtMillis: expiresAtMillis)
        return shard.engine.applyImmediately([entry]).map { $0.map { entry.record.timestamp } }
    }

    /// The owning shard of `key` and the entry for the write, stamped with a new timestamp.
    private func stamped(_ key: Key, value: Value?, expiresAtMillis: UInt64?) -> (Shard, Entry) {
        let timestamp = nextTimestamp()
        let record: Record = value.map { .value($0, at: timestamp, expiresAtMillis: expiresAtMillis) } ?? .tombstone(at: timestamp)
        let token = key.token
        return (shards[Shard.index(of: token, count: shards.count)], Entry(token: token, key: key, record: record))
    }

    /// One timestamp for all items; one batch per shard (atomic within a shard, not across shards).
    public func writeMany(_ items: [(Key, Value)]) async throws(KVError) -> Timestamp {
        guard accepting.load(ordering: .relaxed) else { throw .closed }
        let timestamp = nextTimestamp()
        var batches = [[Entry]](repeating: [], count: shards.count)
        for (key, value) in items {
            let token = key.token
            batches[Shard.index(of: token, count: shards.count)].append(Entry(token: token, key: key, record: .value(value, at: timestamp)))
        }
        for (i, batch) in batches.enumerated() where !batch.isEmpty {
            try await shards[i].engine.apply(batch)
        }
        return timestamp
    }

    /// Sums the shards' memtable and SSTable entry counts (one call per shard).
    public func statistics() async -> ServiceStatistics {
        var entries: UInt64 = 0
        for shard in shards {
            let s = await shard.engine.stats()
            entries += s.tableEntries + UInt64(s.memtableEntries)
        }
        return ServiceStatistics(shards: shards.count, storedEntries: entries, accepting: accepting.load(ordering: .relaxed))
    }

    /// Stops taking requests (they fail with `KVError.closed`) and closes every
    /// engine, which makes acknowledged writes durable (WAL synced). Idempotent.
    public func close() async {
        accepting.store(false, ordering: .sequentiallyConsistent)
        for shard in shards { await shard.engine.close() }
        logger.info("closed \(shards.count) shards")
    }
}
