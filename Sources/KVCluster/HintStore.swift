import KVCore
import KVStorage

/// One stored hint: a write for a replica that was down, kept to be handed over.
public struct Hint: Sendable, Equatable {
    /// The replica the write belongs to.
    public var target: NodeID
    /// Position in the hint log (increasing; delivery follows it).
    public var sequence: UInt64
    /// When the hint was stored (wall-clock ms), for the hint window.
    public var createdAtMillis: UInt64
    /// The write itself, with its original timestamp.
    public var entry: Entry
}

/// Counters of hinted handoff since the node started.
public struct HintCounters: Sendable, Equatable {
    /// Hints written to the log.
    public var stored: UInt64 = 0
    /// Hints not stored because the target's queue was full (`maxHintsPerTarget`).
    public var droppedFull: UInt64 = 0
    /// Hints not stored or deleted because the hint window had passed.
    public var droppedExpired: UInt64 = 0
    /// Hints acknowledged by their target and deleted.
    public var delivered: UInt64 = 0
    /// Hints handed to another node to keep (by a node leaving the cluster) and deleted.
    public var handedOff: UInt64 = 0
    /// Hints deleted because their target left the cluster (its ranges now live elsewhere).
    public var droppedLeft: UInt64 = 0

    public init() {}
}

/// The durable hint log of a node: a `StorageEngine` of its own (`<data-dir>/hints`,
/// same WAL and commit mode as the data), so a hint survives a crash once its write
/// was acknowledged. Layout in `FORMAT.md`.
///
/// The engine orders records by key hash, so the per-target order lives in memory: a
/// queue of sequence numbers per target, rebuilt by one scan at open. Each queued hint
/// costs about 40 bytes of memory; storing or deleting one is one engine write.
public actor HintStore {
    /// Bounds and window.
    public let policy: HintPolicy
    private let engine: StorageEngine
    private var queues: [NodeID: [UInt64]] = [:]
    private var nextSequence: UInt64 = 1
    /// Counters since start.
    public private(set) var counters = HintCounters()

    private init(engine: StorageEngine, policy: HintPolicy) {
        self.engine = engine
        self.policy = policy
    }

    /// Opens (or creates) the log at `directory` and rebuilds the queues from it.
    public static func open(engine: StorageEngine, policy: HintPolicy) async throws(KVError) -> HintStore {
        let store = HintStore(engine: engine, policy: policy)
        try await store.load()
        return store
    }

    private func load() async throws(KVError) {
        var cursor: ScanCursor?
        repeat {
            let page = try await engine.scan(tokens: Token.min...Token.max, after: cursor, limit: 4096)
            for e in page.entries {
                guard let (target, sequence) = Self.parse(e.key) else { continue }
                // Deleted hints still count for the sequence: a reused number would sit under its tombstone.
                nextSequence = max(nextSequence, sequence + 1)
                if !e.record.isTombstone { queues[target, default: []].append(sequence) }
            }
            cursor = page.resume
        } while cursor != nil
        for id in queues.keys { queues[id]!.sort() }
    }

    /// Hints waiting per target.
    public var queued: [NodeID: Int] { queues.filter { !$0.value.isEmpty }.mapValues(\.count) }

    /// Stores `entries` as hints for `target` (down since `downSinceMillis`, if known).
    /// Hints beyond the per-target bound, or for a target down longer than the window,
    /// are dropped and counted, never an error. Returns how many were stored.
    @discardableResult
    public func store(
        _ entries: [Entry], for target: NodeID, downSinceMillis: UInt64?, nowMillis: UInt64
    ) async throws(KVError) -> Int {
        var batch: [Entry] = []
        var queue = queues[target] ?? []
        for entry in entries {
            if let reason = policy.dropReason(
                queued: queue.count, targetDownSinceMillis: downSinceMillis, nowMillis: nowMillis)
            {
                switch reason {
                case .targetQueueFull: counters.droppedFull += 1
                case .targetDownTooLong: counters.droppedExpired += 1
                }
                continue
            }
            let sequence = nextSequence
            nextSequence += 1
            queue.append(sequence)
            batch.append(
                Entry(
                    key: Self.key(target: target, sequence: sequence),
                    record: .value(Self.value(createdAtMillis: nowMillis, entry: entry), at: Timestamp(rawValue: sequence))))
        }
        guard !batch.isEmpty else { return 0 }
        queues[target] = queue
        do {
            try await engine.apply(batch)
        } catch {
            let failed = Set(batch.map(\.key))
            queues[target]?.removeAll { failed.contains(Self.key(target: target, sequence: $0)) }
            throw error
        }
        counters.stored += UInt64(batch.count)
        return batch.count
    }

    /// The next hints to hand to `target`, oldest first, at most the policy's batch size;
    /// hints past the window met on the way are deleted and counted.
    public func nextBatch(for target: NodeID, nowMillis: UInt64) async throws(KVError) -> [Hint] {
        guard let queue = queues[target], !queue.isEmpty else { return [] }
        var hints: [Hint] = []
        var missing: Set<UInt64> = []
        for sequence in queue.prefix(policy.settings.deliveryBatchSize * 2) {
            guard let record = try await engine.get(Self.key(target: target, sequence: sequence)),
                let value = record.value, let (created, entry) = Self.parseValue(value.bytes)
            else {
                missing.insert(sequence)
                continue
            }
            hints.append(Hint(target: target, sequence: sequence, createdAtMillis: created, entry: entry))
        }
        if !missing.isEmpty { queues[target]?.removeAll { missing.contains($0) } }
        let (expired, deliver) = policy.nextBatch(from: hints, createdAt: \.createdAtMillis, nowMillis: nowMillis)
        if !expired.isEmpty {
            try await remove(expired)
            counters.droppedExpired += UInt64(expired.count)
        }
        return deliver
    }

    /// Deletes hints that were delivered.
    public func delivered(_ hints: [Hint]) async throws(KVError) {
        try await remove(hints)
        counters.delivered += UInt64(hints.count)
    }

    /// Deletes every hint for `target`, a node that has left the cluster (its ranges were
    /// streamed to, and its writes also sent to, the nodes that took them over). Returns
    /// how many were deleted. One engine write per batch of `deliveryBatchSize`.
    @discardableResult
    public func dropAll(for target: NodeID) async throws(KVError) -> Int {
        var dropped = 0
        while let queue = queues[target], !queue.isEmpty {
            let sequences = Array(queue.prefix(policy.settings.deliveryBatchSize))
            try await remove(target: target, sequences: sequences)
            dropped += sequences.count
        }
        counters.droppedLeft += UInt64(dropped)
        return dropped
    }

    /// Deletes hints that another node has taken over (it now keeps them for their target).
    public func handedOff(_ hints: [Hint]) async throws(KVError) {
        try await remove(hints)
        counters.handedOff += UInt64(hints.count)
    }

    private func remove(_ hints: [Hint]) async throws(KVError) {
        var gone: [NodeID: [UInt64]] = [:]
        for h in hints { gone[h.target, default: []].append(h.sequence) }
        for (target, sequences) in gone { try await remove(target: target, sequences: sequences) }
    }

    /// Deletes `target`'s hints numbered `sequences` (tombstones in the log, out of the queue).
    private func remove(target: NodeID, sequences: [UInt64]) async throws(KVError) {
        guard !sequences.isEmpty else { return }
        let set = Set(sequences)
        queues[target]?.removeAll { set.contains($0) }
        let tombstones = sequences.map {
            Entry(key: Self.key(target: target, sequence: $0), record: .tombstone(at: Timestamp(rawValue: $0 + 1)))
        }
        try await engine.apply(tombstones)
    }

    /// Closes the log's engine.
    public func close() async { await engine.close() }

    // MARK: Layout

    static func key(target: NodeID, sequence: UInt64) -> Key {
        var bytes = Array(target.name.utf8)
        bytes.append(0)
        withUnsafeBytes(of: sequence.bigEndian) { bytes.append(contentsOf: $0) }
        return Key(bytes)
    }

    static func parse(_ key: Key) -> (NodeID, UInt64)? {
        let bytes = key.bytes
        guard bytes.count >= 9, bytes[bytes.count - 9] == 0 else { return nil }
        var sequence: UInt64 = 0
        for b in bytes.suffix(8) { sequence = sequence << 8 | UInt64(b) }
        guard let name = String(validating: bytes.prefix(bytes.count - 9), as: UTF8.self) else { return nil }
        return (NodeID(name), sequence)
    }

    static func value(createdAtMillis: UInt64, entry: Entry) -> Value {
        var w = ByteWriter(capacity: 32 + entry.key.bytes.count + entry.record.valueByteCount)
        w.write(littleEndian: createdAtMillis)
        EntryCodec.encode(key: entry.key, record: entry.record, into: &w)
        return Value(w.bytes)
    }

    static func parseValue(_ bytes: [UInt8]) -> (UInt64, Entry)? {
        bytes.withUnsafeBytes { raw -> (UInt64, Entry)? in
            var r = ByteReader(raw)
            guard let created = try? r.read(littleEndian: UInt64.self),
                let (key, record) = try? EntryCodec.decode(from: &r)
            else { return nil }
            return (created, Entry(key: key, record: record))
        }
    }
}
