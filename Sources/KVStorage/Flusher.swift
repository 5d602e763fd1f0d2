import KVCore

/// Writes frozen memtables to level-0 SSTables, oldest first, one at a time.
///
/// One per engine, a child task of the engine's background task. Its own
/// executor (the engine's low-priority `BackgroundExecutor` thread) does the file writing (sort-order iteration of the skiplist, block
/// encoding, `fsync`), so the shard keeps serving reads and writes meanwhile. The
/// engine then records the table in its manifest (`StorageEngine.stageFlush`), the
/// flusher writes that manifest and releases the WAL segments the memtable covered
/// here too, and the engine puts the table on the read path (`StorageEngine.finishFlush`).
actor Flusher {
    private let executor: BackgroundExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// A flusher whose jobs run on `executor` (the engine's background thread).
    init(executor: BackgroundExecutor) { self.executor = executor }

    /// One frozen memtable to write.
    struct Job: Sendable {
        var memtable: Memtable
        var ordinal: UInt64
        var walEnd: UInt64
        var number: UInt64
        var path: String
        var directory: String
        var settings: TableSettings
        var createdAtMillis: UInt64
        var cache: BlockCache?
        /// Where the manifest naming the new table is written.
        var manifest: ManifestStore
    }

    /// Flushes whatever the engine has frozen each time `signals` fires; returns when
    /// the stream ends (engine closing).
    func run(engine: StorageEngine, signals: AsyncStream<Void>) async {
        for await _ in signals {
            while let job = await engine.nextFlushJob() {
                var result = Self.write(job)
                if case .success(let reader) = result {
                    // The manifest's fsyncs and the WAL segments' removal happen here, on
                    // the background thread, not on the engine's loop.
                    let staged = await engine.stageFlush(job, reader: reader)
                    do throws(KVError) {
                        try job.manifest.write(staged.manifest)
                        engine.wal.release(below: staged.walStart)
                    } catch {
                        result = .failure(error)
                    }
                }
                await engine.finishFlush(job, result: result)
            }
        }
    }

    /// Writes the memtable as an SSTable, makes its name durable and opens it.
    static func write(_ job: Job) -> Result<SSTableReader, KVError> {
        Result { () throws(KVError) -> SSTableReader in
            let writer = try SSTableWriter(
                path: job.path, settings: job.settings, createdAtMillis: job.createdAtMillis)
            var entries = job.memtable.makeIterator()
            try writer.append(contentsOf: &entries)
            _ = try writer.finish()
            try DiskDirectory.sync(job.directory)
            return try SSTableReader.open(path: job.path, cache: job.cache)
        }
    }
}
