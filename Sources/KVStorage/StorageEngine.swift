import KVCore
import Logging

/// One shard's LSM storage engine: a write-ahead log, memtables, SSTables, and the
/// `Flusher` and `Compactor` that keep the tree in shape. The API the cluster and
/// the server call.
///
/// Writes (`apply`) go to the WAL (group commit) and the active memtable; a full
/// memtable is frozen and flushed in the background while writes continue into a
/// fresh one. Reads (`get`, `scan`) see the newest version of a key across the row
/// cache, the memtables and the SSTables. Compaction merges tables and drops data
/// that can no longer be seen.
///
/// The engine is an actor. Give it the shard's serial executor (`executor:` in
/// `open`) and every call from that shard runs inline on its thread (≈ 25 ns per
/// hop); without one it behaves like any default actor. File writes of flushes and
/// compactions, and the WAL's `fdatasync`, happen off this executor; point reads
/// and scans read SSTable blocks (a cache hit, or one `pread`) on it.
public actor StorageEngine {
    // MARK: Executor

    /// Gives the engine a default actor's executor when none is supplied.
    private actor ExecutorFallback {}
    private let fallback = ExecutorFallback()
    private let customExecutor: UnownedSerialExecutor?
    /// Keeps a caller-supplied executor alive as long as the engine.
    private let executorReference: (any SerialExecutor)?

    /// The shard's executor when one was given to `open`, else a default actor's.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        customExecutor ?? fallback.unownedExecutor
    }

    // MARK: State

    /// The directory holding this engine's files (WAL segments, SSTables, MANIFEST).
    public nonisolated let directory: String
    /// The settings the engine was opened with.
    public nonisolated let settings: StorageSettings
    let clock: any WallClock
    let logger: Logger
    let blockCache: BlockCache?
    nonisolated let wal: WAL
    /// Held until `close()`: no second engine may open this directory meanwhile.
    var directoryLock: DirectoryLock?

    var manifest: Manifest
    /// Writes `manifest` to disk; `manifestVersion` numbers the states handed to it.
    let manifestStore: ManifestStore
    var manifestVersion: UInt64 = 0
    // The state every read or write touches is `@exclusivity(unchecked)`: it is isolated
    // to the engine, no access to it stays open across a call that could reach it again
    // (no mutating closure refers to the property it mutates), and the runtime check cost
    // several calls per request.
    /// The memtable taking writes.
    @exclusivity(unchecked) var active = Memtable()
    /// Frozen memtables waiting for (or being written by) the flusher, oldest first.
    @exclusivity(unchecked) var frozen: [FrozenMemtable] = []
    /// Live tables, newest data first (by maximum timestamp), so a point read can stop early.
    @exclusivity(unchecked) var tables: [LiveTable] = []
    @exclusivity(unchecked) var rowCache: RowCache
    @exclusivity(unchecked) var isClosed = false
    /// A failed background flush or WAL write: later writes fail with it.
    @exclusivity(unchecked) var backgroundFailure: KVError?

    /// Frozen memtables are numbered as they freeze; `flushedThrough` is the last one flushed.
    var frozenCount: UInt64 = 0
    var flushedThrough: UInt64 = 0
    var flushWaiters: [(through: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    var stallWaiters: [CheckedContinuation<Void, Never>] = []
    var compactionInProgress = false

    // Counters for `stats()`.
    @exclusivity(unchecked) var userBytesWritten: UInt64 = 0
    var tableBytesWritten: UInt64 = 0
    var manifestBytesWritten: UInt64 = 0
    var flushCount: UInt64 = 0
    var compactionCount: UInt64 = 0
    var stallCount: UInt64 = 0
    var quarantinedCount = 0

    // Background work: one task whose child tasks run the flusher and compactor loops.
    /// The low-priority thread the flusher and compactor run on.
    let backgroundExecutor: BackgroundExecutor
    let flusher: Flusher
    let compactor: Compactor

    deinit {
        // An engine dropped without `close()` still ends its background thread.
        backgroundExecutor.shutdown()
    }
    var flushSignal: AsyncStream<Void>.Continuation?
    var compactionRequests: AsyncStream<CompactionRequest>.Continuation?
    var background: Task<Void, Never>?

    /// A memtable that takes no more writes; its data lies in WAL segments below `walEnd`.
    struct FrozenMemtable: Sendable {
        var memtable: Memtable
        var walEnd: UInt64
        var ordinal: UInt64
    }

    /// An open SSTable and where it sits in the tree.
    struct LiveTable: Sendable {
        var number: UInt64
        var level: Int
        var reader: SSTableReader
    }

    init(
        directory: String, settings: StorageSettings, clock: any WallClock, logger: Logger,
        executor: (any SerialExecutor)?, manifest: Manifest, wal: WAL, tables: [LiveTable],
        blockCache: BlockCache?, lock: DirectoryLock
    ) {
        self.directoryLock = lock
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.executorReference = executor
        self.customExecutor = executor?.asUnownedSerialExecutor()
        self.manifest = manifest
        self.manifestStore = ManifestStore(directory: directory)
        self.wal = wal
        self.tables = tables.sorted { $0.reader.metadata.maxTimestamp > $1.reader.metadata.maxTimestamp }
        self.blockCache = blockCache
        self.rowCache = RowCache(capacityBytes: settings.rowCacheBytes)
        let background = BackgroundExecutor(name: "kv-background")
        self.backgroundExecutor = background
        self.flusher = Flusher(executor: background)
        self.compactor = Compactor(executor: background)
    }

    // MARK: Opening

    /// Opens (or creates) the engine stored in `directory`: loads the manifest, deletes
    /// files a crash left behind, opens the live SSTables, replays the WAL into a
    /// memtable and starts the flusher and compactor.
    ///
    /// Throws `KVError.corruption` when the manifest or the WAL is damaged anywhere but
    /// the WAL's last frame (a torn tail is truncated and logged), and `KVError.io` when
    /// the directory cannot be used (`operation: "flock"` when another engine has it
    /// open). A table whose checksum fails on open is quarantined, not fatal. Cost: reads every WAL segment still live (≤ a few
    /// memtables' worth) and each table's index and bloom filter.
    public static func open(
        directory: String,
        settings: StorageSettings = .default,
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "kvd.storage"),
        executor: (any SerialExecutor)? = nil
    ) async throws(KVError) -> StorageEngine {
        try DiskDirectory.create(directory)
        try DiskDirectory.create(directory + "/" + quarantineFolder)
        let lock = try DirectoryLock(directory: directory)
        if settings.prefaultMemtable { MemtableChunkPool.shared.prefault(bytes: settings.memtableBytes) }
        var manifest = try Manifest.load(directory: directory) ?? Manifest()
        let blockCache = settings.tables.blockCacheBytes > 0 ? BlockCache(capacityBytes: settings.tables.blockCacheBytes) : nil

        // Files not in the manifest are leftovers of a flush or compaction that did not finish.
        let live = Set(manifest.tables.map(\.number))
        for name in try DiskDirectory.list(directory) {
            let orphan: Bool
            if let number = Manifest.tableNumber(fileName: name) {
                orphan = !live.contains(number)
            } else {
                orphan = name.hasSuffix(".tmp")
            }
            if orphan {
                logger.info("removing leftover file", metadata: ["file": "\(name)"])
                try DiskDirectory.remove(directory + "/" + name)
            }
        }

        var tables: [LiveTable] = []
        var quarantined: [Manifest.Table] = []
        for table in manifest.tables {
            let path = directory + "/" + Manifest.tableFileName(table.number)
            do {
                let reader = try SSTableReader.open(path: path, cache: blockCache)
                tables.append(LiveTable(number: table.number, level: table.level, reader: reader))
            } catch let error {
                guard case .corruption = error else { throw error }
                logger.error("quarantining damaged table", metadata: ["file": "\(path)", "error": "\(error)"])
                try moveToQuarantine(path: path, directory: directory)
                quarantined.append(table)
            }
        }
        if !quarantined.isEmpty {
            manifest.tables.removeAll { quarantined.contains($0) }
            try manifest.write(directory: directory)
        }

        let recovery = try WAL.recover(
            directory: directory, startSegment: manifest.walStartSegment, firstSequence: manifest.nextSequence)
        for (segment, bytes) in recovery.truncated {
            logger.warning(
                "truncated torn WAL tail", metadata: ["segment": "\(segment)", "bytes": "\(bytes)"])
        }
        let wal = WAL(
            directory: directory, settings: settings.wal, nextSegment: recovery.nextSegment,
            nextSequence: recovery.nextSequence, spares: recovery.spares)
        let engine = StorageEngine(
            directory: directory, settings: settings, clock: clock, logger: logger, executor: executor,
            manifest: manifest, wal: wal, tables: tables, blockCache: blockCache, lock: lock)
        await engine.start(replaying: recovery.batches, walEnd: recovery.nextSegment)
        engine.logger.info(
            "storage engine open",
            metadata: [
                "directory": "\(directory)", "tables": "\(tables.count)",
                "replayedBatches": "\(recovery.batches.count)",
            ])
        return engine
    }

    static let quarantineFolder = "quarantine"

    static func moveToQuarantine(path: String, directory: String) throws(KVError) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        try DiskDirectory.rename(path, directory + "/" + quarantineFolder + "/" + name)
        try DiskDirectory.sync(directory)
    }

    private func start(replaying batches: [WALSegment.Batch], walEnd: UInt64) {
        for batch in batches {
            for entry in batch.entries { active.put(entry) }
        }
        if active.approximateBytes >= settings.memtableBytes { freezeActive(walEnd: walEnd) }

        let (flushStream, flushContinuation) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (compactionStream, compactionContinuation) = AsyncStream.makeStream(of: CompactionRequest.self)
        flushSignal = flushContinuation
        compactionRequests = compactionContinuation
        let flusher = self.flusher
        let compactor = self.compactor
        // The flusher and compactor loops are child tasks of this one task; `close()`
        // ends their input streams and awaits it.
        background = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await flusher.run(engine: self, signals: flushStream) }
                group.addTask { await compactor.run(engine: self, requests: compactionStream) }
            }
        }
        if !frozen.isEmpty { flushContinuation.yield() }
        if settings.backgroundCompaction { compactionContinuation.yield(.background) }
    }

    // MARK: Writing

    /// Applies a batch of versions atomically (all or none survive a crash) and returns
    /// when it is durable per the commit mode: after the `fdatasync` that covers it in
    /// `.sync` mode (shared with concurrent writers), at once in `.periodic` mode.
    ///
    /// Each entry keeps its own timestamp: a version older than the stored one is kept
    /// but does not win (last write wins). Throws `KVError.emptyKey`, `.keyTooLarge`,
    /// `.valueTooLarge` (nothing is applied), `.closed`, or the I/O error that broke the
    /// WAL. May wait (back-pressure) while the flusher or compactor catches up.
    public nonisolated func apply(_ batch: [Entry]) async throws(KVError) {
        let ticket: UInt64?
        // Called on the engine's own executor (a shard's loop) with nothing to wait for:
        // insert in place, without the two executor switches of an actor call.
        if executorReference?.isIsolatingCurrentContext() == true, let done = enqueueInPlace(batch) {
            ticket = try done.get()
        } else {
            ticket = try await enqueue(batch)
        }
        guard let ticket else { return }
        // `periodic`: acknowledged once queued (the append itself reports an earlier failure).
        if wal.acknowledgesOnAppend { return }
        // Wait for the disk outside the actor: the engine keeps serving while this
        // writer waits, and the syncing thread resumes the writer directly.
        do {
            try await wal.waitUntilDurable(ticket)
        } catch {
            throw error as? KVError ?? .io(operation: "wal", path: directory, errno: 0)
        }
    }

    /// `apply` without suspending, when it has nothing to wait for: called on the engine's
    /// own executor, in `periodic` commit mode (acknowledged once appended), with no
    /// back-pressure. Then the batch is applied and the result says how that went. Nil
    /// when `apply` would have to wait: nothing was applied; call `apply`.
    public nonisolated func applyImmediately(_ batch: [Entry]) -> Result<Void, KVError>? {
        guard wal.acknowledgesOnAppend, executorReference?.isIsolatingCurrentContext() == true,
            let done = enqueueInPlace(batch)
        else { return nil }
        return done.map { _ in () }
    }

    /// Validates the batch, waits out back-pressure, queues it in the WAL and inserts it
    /// into the active memtable. Returns the WAL ticket (nil for an empty batch).
    private func enqueue(_ batch: [Entry]) async throws(KVError) -> UInt64? {
        let bytes = try validate(batch)
        guard !batch.isEmpty else { return nil }
        if mayHaveToWait { try await waitWhileStalled() }
        return try insert(batch, bytes: bytes)
    }

    /// `enqueueWithoutWaiting`, entered synchronously: only on the engine's own executor
    /// (see `readImmediately` for why this is not `assumeIsolated`).
    private nonisolated func enqueueInPlace(_ batch: [Entry]) -> Result<UInt64?, KVError>? {
        let enqueue: (isolated StorageEngine, [Entry]) -> Result<UInt64?, KVError>? = { engine, batch in
            engine.enqueueWithoutWaiting(batch)
        }
        // unsafe: drops only the isolation from the function type (the cast `assumeIsolated`
        // makes); the caller's `isIsolatingCurrentContext()` check makes the isolation true.
        return unsafeBitCast(enqueue, to: ((StorageEngine, [Entry]) -> Result<UInt64?, KVError>?).self)(self, batch)
    }

    /// `enqueue` when it would not wait; nil when it might (back-pressure, closing, a failure).
    private func enqueueWithoutWaiting(_ batch: [Entry]) -> Result<UInt64?, KVError>? {
        if mayHaveToWait { return nil }
        return Result { () throws(KVError) -> UInt64? in
            let bytes = try validate(batch)
            return batch.isEmpty ? nil : try insert(batch, bytes: bytes)
        }
    }

    /// Checks every entry against the limits; returns the user bytes of the batch.
    private func validate(_ batch: [Entry]) throws(KVError) -> Int {
        // By index, reading counts in place: `for entry in batch` copies each entry (a
        // retain and a release per key and value).
        var bytes = 0
        for i in batch.indices {
            let keyBytes = batch[i].key.bytes.count
            let valueBytes = batch[i].record.valueByteCount
            try settings.limits.check(keyByteCount: keyBytes)
            try settings.limits.check(valueByteCount: valueBytes)
            bytes += keyBytes + valueBytes
        }
        return bytes
    }

    /// Queues the batch in the WAL and inserts it into the active memtable (freezing it when full).
    private func insert(_ batch: [Entry], bytes: Int) throws(KVError) -> UInt64 {
        let ticket = try wal.append(batch)
        for i in batch.indices {
            active.put(key: batch[i].key, token: batch[i].token, record: batch[i].record)
            if rowCache.isEnabled { rowCache.update(batch[i].key, batch[i].record) }
        }
        userBytesWritten += UInt64(bytes)
        if active.approximateBytes >= settings.memtableBytes && frozen.count < settings.maxFrozenMemtables {
            freezeActive(walEnd: wal.rotate())
        }
        return ticket
    }

    /// Writes `value` for `key` at `timestamp` (see `apply`).
    public nonisolated func put(_ key: Key, _ value: Value, at timestamp: Timestamp, expiresAtMillis: UInt64? = nil)
        async throws(KVError)
    {
        try await apply([Entry(key: key, record: .value(value, at: timestamp, expiresAtMillis: expiresAtMillis))])
    }

    /// Writes a tombstone for `key` at `timestamp` (see `apply`).
    public nonisolated func delete(_ key: Key, at timestamp: Timestamp) async throws(KVError) {
        try await apply([Entry(key: key, record: .tombstone(at: timestamp))])
    }

    /// Whether `waitWhileStalled` could do anything but return (checked first, so the
    /// common write skips an async call).
    private var mayHaveToWait: Bool {
        isClosed || backgroundFailure != nil
            || (active.approximateBytes >= settings.memtableBytes && frozen.count >= settings.maxFrozenMemtables)
            || (settings.backgroundCompaction && writeStall != .none)
    }

    /// Waits while the memtables or the table count are over their limits (stop), and
    /// delays the batch a little when the table count nears the limit (slowdown).
    private func waitWhileStalled() async throws(KVError) {
        var slowed = false
        while true {
            if isClosed { throw .closed }
            if let backgroundFailure { throw backgroundFailure }
            let memtablesFull =
                active.approximateBytes >= settings.memtableBytes && frozen.count >= settings.maxFrozenMemtables
            let pressure = settings.backgroundCompaction ? writeStall : .none
            if pressure == .slowdown && !slowed && settings.slowdownDelayMicros > 0 {
                slowed = true
                stallCount += 1
                if !compactionInProgress { compactionRequests?.yield(.background) }
                try? await Task.sleep(for: .microseconds(settings.slowdownDelayMicros))
                continue
            }
            guard memtablesFull || pressure == .stop else { return }
            stallCount += 1
            if pressure == .stop && !compactionInProgress { compactionRequests?.yield(.background) }
            await withCheckedContinuation { stallWaiters.append($0) }
        }
    }

    /// The back-pressure compaction asks for: the planner counts all tables
    /// (size-tiered) or level-0 tables (leveled) against its thresholds.
    var writeStall: WriteStall {
        let count: Int
        switch settings.tables.compaction.strategy {
        case .sizeTiered: count = tables.count
        case .leveled: count = tables.count { $0.level == 0 }
        }
        let thresholds = settings.tables.compaction
        if count >= thresholds.stopTableCount { return .stop }
        if count >= thresholds.slowdownTableCount { return .slowdown }
        return .none
    }

    func resumeStalledWriters() {
        let waiters = stallWaiters
        stallWaiters = []
        for w in waiters { w.resume() }
    }

    /// Freezes the active memtable (its data lies in WAL segments below `walEnd`) and wakes the flusher.
    func freezeActive(walEnd: UInt64) {
        guard active.count > 0 else { return }
        active.freeze()
        frozenCount += 1
        frozen.append(FrozenMemtable(memtable: active, walEnd: walEnd, ordinal: frozenCount))
        active = Memtable()
        flushSignal?.yield()
    }

    // MARK: Reading

    /// The newest stored version of `key` — a value, an expired value or a tombstone —
    /// or nil when the engine holds none. The cluster uses tombstones and timestamps for
    /// last-write-wins and repair; use `value(for:)` for what a client should see.
    ///
    /// Cost: a row cache lookup, then a skiplist search per memtable, then for each table
    /// that may hold newer data a token-bounds and bloom check and, on a hit, one block
    /// read (cached or one `pread`). Throws `KVError.corruption` when a block fails its
    /// checksum: the table is quarantined and the error says which file.
    public func get(_ key: Key) throws(KVError) -> Record? {
        if rowCache.isEnabled, let cached = rowCache.lookup(key) { return cached }
        let token = key.token
        var best = active.get(key: key, token: token)
        for f in frozen.reversed() {
            if let r = f.memtable.get(key: key, token: token) { best = best.map { Record.newest($0, r) } ?? r }
        }
        // One read of the actor's table list (a local copy), not a dynamically checked
        // access of the stored property per table.
        let tables = self.tables
        for table in tables {
            // Tables are ordered by their newest timestamp: none further on can hold a newer version.
            if let b = best, b.timestamp > table.reader.metadata.maxTimestamp { break }
            let found: Record?
            do {
                found = try table.reader.get(key: key, token: token)
            } catch let error {
                if case .corruption = error { quarantine(table, error: error) }
                throw error
            }
            if let r = found { best = best.map { Record.newest($0, r) } ?? r }
        }
        if let best, rowCache.isEnabled { rowCache.insert(key, best) }
        return best
    }

    /// `get` from any context. Called on the engine's own executor (a request served on
    /// its shard's loop), it reads in place, without the two executor switches of an actor
    /// call (≈ 7 % of a GET's CPU); elsewhere it hops to the engine.
    public nonisolated func read(_ key: Key) async throws(KVError) -> Record? {
        if let now = readImmediately(key) { return try now.get() }
        return try await get(key)
    }

    /// `get` without suspending: its result when called on the engine's own executor, nil
    /// elsewhere (then `read`). For a caller that can answer without an `await` at all:
    /// even an `await` that does not suspend costs a task switch when it returns (≈ 1.3 %
    /// of a RESP GET's CPU, counted with a `swift_task_switch` probe).
    ///
    /// Not `assumeIsolated`: that checks the executor a second time and, converting its
    /// capturing closure to an escaping one, made two heap allocations per call (2 of the
    /// 8 of a RESP GET, counted with a `malloc` probe). This closure captures nothing (the
    /// key comes as its argument), so it is a thin function and the cast allocates nothing.
    public nonisolated func readImmediately(_ key: Key) -> Result<Record?, KVError>? {
        guard executorReference?.isIsolatingCurrentContext() == true else { return nil }
        let get: (isolated StorageEngine, Key) -> Result<Record?, KVError> = { engine, key in
            Result { () throws(KVError) in try engine.get(key) }
        }
        // unsafe: drops only the isolation from the function type (the cast `assumeIsolated`
        // makes); the `isIsolatingCurrentContext()` check above makes the isolation true.
        return unsafeBitCast(get, to: ((StorageEngine, Key) -> Result<Record?, KVError>).self)(self, key)
    }

    /// The value a client reads for `key`: nil when absent, deleted, or expired at the
    /// engine's wall clock. Same cost as `get`.
    public func value(for key: Key) throws(KVError) -> Value? {
        try get(key)?.visibleValue(nowMillis: clock.nowMillis())
    }

    // MARK: Corruption

    /// Removes a table whose bytes failed a check from the read path and the manifest
    /// and moves its file to `quarantine/`. Its data must come back from a replica.
    func quarantine(_ table: LiveTable, error: KVError) {
        guard let index = tables.firstIndex(where: { $0.number == table.number }) else { return }
        tables.remove(at: index)
        manifest.tables.removeAll { $0.number == table.number }
        blockCache?.evictAll(tableID: table.reader.cacheID)
        rowCache.removeAll()
        quarantinedCount += 1
        logger.error(
            "quarantining damaged table",
            metadata: ["file": "\(table.reader.path)", "error": "\(error)"])
        do {
            try writeManifest()
            try Self.moveToQuarantine(path: table.reader.path, directory: directory)
        } catch {
            logger.error("could not quarantine table", metadata: ["error": "\(error)"])
        }
    }

    /// Writes `manifest` now, on this executor (rare paths: quarantine).
    func writeManifest() throws(KVError) {
        try manifestStore.write(stageManifest())
    }

    /// Numbers and encodes the current `manifest` for `manifestStore`, which the
    /// flusher and compactor write from the background thread.
    func stageManifest() -> ManifestStore.Update {
        manifestVersion += 1
        let bytes = manifest.encode()
        manifestBytesWritten += UInt64(bytes.count)
        return ManifestStore.Update(version: manifestVersion, bytes: bytes)
    }

    // MARK: Statistics

    /// Sizes, counts and efficiency figures (see `StorageStats`). Cost: O(tables).
    public func stats() -> StorageStats {
        var perLevel: [Int] = []
        var bytes: UInt64 = 0
        var entries: UInt64 = 0
        var tombstones: UInt64 = 0
        for t in tables {
            while perLevel.count <= t.level { perLevel.append(0) }
            perLevel[t.level] += 1
            bytes += t.reader.fileSizeBytes
            entries += t.reader.metadata.entryCount
            tombstones += t.reader.metadata.tombstoneCount
        }
        let walStats = wal.statistics
        let cacheStats = blockCache?.statistics
        return StorageStats(
            tableCount: tables.count, tablesPerLevel: perLevel, tableBytes: bytes, tableEntries: entries,
            tableTombstones: tombstones,
            memtableBytes: active.approximateBytes + frozen.reduce(0) { $0 + $1.memtable.approximateBytes },
            memtableEntries: active.count + frozen.reduce(0) { $0 + $1.memtable.count },
            frozenMemtables: frozen.count, userBytesWritten: userBytesWritten,
            diskBytesWritten: walStats.bytesWritten + tableBytesWritten + manifestBytesWritten,
            flushes: flushCount, compactions: compactionCount, stalls: stallCount,
            quarantinedTables: quarantinedCount,
            blockCacheHits: cacheStats?.hits ?? 0, blockCacheMisses: cacheStats?.misses ?? 0,
            rowCacheHits: rowCache.hits, rowCacheMisses: rowCache.misses,
            walSyncs: walStats.syncs, walSyncedBatches: walStats.syncedFrames)
    }

    // MARK: Closing

    /// Stops the flusher and compactor (a job in progress finishes first), syncs the
    /// WAL and closes it. Memtables are not flushed: the WAL replays them on the next
    /// open. Later calls fail with `KVError.closed`; calling `close` again does nothing.
    public func close() async {
        guard !isClosed else { return }
        isClosed = true
        resumeStalledWriters()
        flushSignal?.finish()
        compactionRequests?.finish()
        await background?.value
        background = nil
        backgroundExecutor.shutdown()
        let waiters = flushWaiters
        flushWaiters = []
        for w in waiters { w.continuation.resume() }
        await wal.close()
        directoryLock = nil
    }
}
