import KVCore
import KVStorage

/// This node's own copy of the data: its shards (one LSM engine per event loop), with
/// keys routed to a shard by token. The coordinator calls it for the local replica;
/// the RPC side calls it for writes and reads from other coordinators.
///
/// A call for a key runs on the owning shard's executor (one hop when the caller is on
/// another loop). A batch is split by shard; each shard's part is one `apply` (one WAL
/// frame, durable per the commit mode).
public final class LocalReplica: Sendable {
    /// The shards, in loop order.
    public let shards: [Shard]

    public init(shards: [Shard]) {
        precondition(!shards.isEmpty, "a replica needs at least one shard")
        self.shards = shards
    }

    /// The shard owning `token`.
    @inlinable public func shard(for token: Token) -> Shard {
        shards[Shard.index(of: token, count: shards.count)]
    }

    /// The newest record stored for `key` (a tombstone or expired value included), or nil.
    public func get(_ key: Key) async throws(KVError) -> Record? {
        try await shard(for: key.token).engine.read(key)
    }

    /// Applies `entries` (each keeps its own timestamp; the engines keep the newest
    /// version per key).
    public func apply(_ entries: [Entry]) async throws(KVError) {
        if shards.count == 1 {
            try await shards[0].engine.apply(entries)
            return
        }
        var batches = [[Entry]](repeating: [], count: shards.count)
        for e in entries { batches[Shard.index(of: e.token, count: shards.count)].append(e) }
        for (i, batch) in batches.enumerated() where !batch.isEmpty {
            try await shards[i].engine.apply(batch)
        }
    }

    /// The newest timestamp stored in any shard, to start the node's clock past it.
    public func newestTimestamp() async -> Timestamp {
        var newest = Timestamp.zero
        for shard in shards {
            if let t = await shard.engine.newestTimestamp() { newest = max(newest, t) }
        }
        return newest
    }

    /// Entries stored across shards (memtables plus tables, every version counted).
    public func storedEntries() async -> UInt64 {
        var total: UInt64 = 0
        for shard in shards {
            let s = await shard.engine.stats()
            total += s.tableEntries + UInt64(s.memtableEntries)
        }
        return total
    }

    /// Closes every engine (acknowledged writes are already durable; the WAL is synced).
    public func close() async {
        for shard in shards { await shard.engine.close() }
    }
}
