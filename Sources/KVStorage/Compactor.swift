import KVCore

/// What the compactor is asked to do.
enum CompactionRequest: Sendable {
    /// Run whatever the planner finds worth running (after a flush, or a stall).
    case background
    /// Merge every table into one sorted run (`StorageEngine.compact()`); resumed when done.
    case major(CheckedContinuation<Void, any Error>)
}

/// Runs compactions one at a time, off the engine's executor: merges the input
/// tables (newest version per key wins), drops what can no longer be seen, writes
/// the outputs (cut at `TableSettings.targetFileSizeBytes`, only between tokens) and
/// hands them to the engine, which swaps them in through the manifest.
///
/// One per engine, a child task of the engine's background task.
actor Compactor {
    /// One compaction, with everything needed to run it without the engine.
    struct Job: Sendable {
        var plan: CompactionPlan
        var inputs: [StorageEngine.LiveTable]
        /// Tables and frozen memtables outside the compaction: a tombstone or expired
        /// value may be dropped only if none of them can hold an older version of its key.
        var otherTables: [SSTableReader]
        var otherMemtables: [Memtable]
        /// The oldest timestamp in the active memtable when the job was planned.
        var activeMinTimestamp: Timestamp?
        var directory: String
        var settings: TableSettings
        var nowMillis: UInt64
        var cache: BlockCache?
    }

    /// Serves requests until the stream ends (engine closing).
    func run(engine: StorageEngine, requests: AsyncStream<CompactionRequest>) async {
        for await request in requests {
            switch request {
            case .background:
                while let job = await engine.nextCompactionJob(major: false) {
                    if await execute(job, engine: engine) != nil { break }
                }
            case .major(let continuation):
                guard let job = await engine.nextCompactionJob(major: true) else {
                    continuation.resume()
                    continue
                }
                if let error = await execute(job, engine: engine) {
                    continuation.resume(throwing: error)
                } else {
                    continuation.resume()
                }
            }
        }
    }

    /// Runs one compaction; returns its error, or nil when the outputs were installed.
    private func execute(_ job: Job, engine: StorageEngine) async -> KVError? {
        var outputs: [StorageEngine.LiveTable] = []
        var writer: SSTableWriter?
        var number: UInt64 = 0
        do throws(KVError) {
            var sources: [any SortedEntrySource] = []
            for input in job.inputs { sources.append(try input.reader.makeIterator(fillCache: false)) }
            var merged = try MergeIterator(sources: sources)
            var lastToken: Token?
            while let entry = try merged.next() {
                if canPurge(entry, job) { continue }
                if let w = writer, w.bytesWritten >= UInt64(job.settings.targetFileSizeBytes),
                    entry.token != lastToken
                {
                    outputs.append(try finish(w, number: number, job: job))
                    writer = nil
                }
                if writer == nil {
                    number = await engine.allocateTableNumber()
                    writer = try SSTableWriter(
                        path: job.directory + "/" + Manifest.tableFileName(number), settings: job.settings,
                        createdAtMillis: job.nowMillis)
                }
                try writer!.append(entry)
                lastToken = entry.token
            }
            if let w = writer {
                outputs.append(try finish(w, number: number, job: job))
                writer = nil
            }
            try DiskDirectory.sync(job.directory)
        } catch {
            writer?.abandon()
            for o in outputs { try? DiskDirectory.remove(o.reader.path) }
            await engine.failCompaction(job, error: error)
            return error
        }
        await engine.finishCompaction(job, outputs: outputs)
        return nil
    }

    private func finish(_ writer: SSTableWriter, number: UInt64, job: Job) throws(KVError) -> StorageEngine.LiveTable {
        _ = try writer.finish()
        let reader = try SSTableReader.open(path: writer.path, cache: job.cache)
        return StorageEngine.LiveTable(number: number, level: job.plan.outputLevel, reader: reader)
    }

    /// A tombstone or an expired value may leave the tree once it is older than the
    /// grace period (so every replica has seen it, and repair can no longer bring back
    /// what it deleted) and no data outside this compaction can hold an older version
    /// of the key, which dropping it would resurrect.
    private func canPurge(_ entry: Entry, _ job: Job) -> Bool {
        let grace = job.settings.compaction.tombstoneGraceMillis
        let deadSince: UInt64
        if entry.record.isTombstone {
            deadSince = entry.record.timestamp.physicalMillis
        } else if let expiry = entry.record.expiresAtMillis, expiry <= job.nowMillis {
            deadSince = expiry
        } else {
            return false
        }
        guard deadSince &+ grace <= job.nowMillis else { return false }
        let timestamp = entry.record.timestamp
        if let activeMin = job.activeMinTimestamp, activeMin <= timestamp { return false }
        for memtable in job.otherMemtables {
            if let older = memtable.get(key: entry.key, token: entry.token), older.timestamp <= timestamp { return false }
        }
        for table in job.otherTables {
            let m = table.metadata
            guard m.entryCount > 0, m.minTimestamp <= timestamp, entry.token >= m.minToken, entry.token <= m.maxToken,
                table.mayContain(token: entry.token)
            else { continue }
            return false
        }
        return true
    }
}
