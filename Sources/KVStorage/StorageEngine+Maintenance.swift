import KVCore
import Logging

/// Flushes and compactions: handing work to the `Flusher` and `Compactor`, and
/// installing their results through the manifest.
extension StorageEngine {
    // MARK: Flush

    /// Freezes the active memtable and returns when it (and every memtable frozen
    /// before it) is in a durable SSTable and its WAL segments are gone. Cost: one
    /// SSTable write plus a manifest update; writes continue meanwhile.
    public func flush() async throws(KVError) {
        if isClosed { throw .closed }
        if active.count > 0 { freezeActive(walEnd: wal.rotate()) }
        let target = frozenCount
        while flushedThrough < target && !isClosed && backgroundFailure == nil {
            await withCheckedContinuation { flushWaiters.append((target, $0)) }
        }
        if let backgroundFailure { throw backgroundFailure }
        if flushedThrough < target { throw .closed }
    }

    /// The oldest frozen memtable, for the flusher (nil when none or closing).
    func nextFlushJob() -> Flusher.Job? {
        guard !isClosed, backgroundFailure == nil, let oldest = frozen.first else { return nil }
        let number = manifest.allocateFileNumber()
        return Flusher.Job(
            memtable: oldest.memtable, ordinal: oldest.ordinal, walEnd: oldest.walEnd, number: number,
            path: directory + "/" + Manifest.tableFileName(number), directory: directory,
            settings: settings.tables, createdAtMillis: clock.nowMillis(), cache: blockCache,
            manifest: manifestStore)
    }

    /// Records a written memtable's table, and the WAL position it covers, in the
    /// in-memory manifest. The flusher makes the returned state durable and releases the
    /// WAL segments below `walStart` (both off this executor) before `finishFlush`.
    func stageFlush(_ job: Flusher.Job, reader: SSTableReader) -> (manifest: ManifestStore.Update, walStart: UInt64) {
        manifest.tables.append(Manifest.Table(number: job.number, level: 0, sizeBytes: reader.fileSizeBytes))
        manifest.walStartSegment = max(manifest.walStartSegment, job.walEnd)
        manifest.nextSequence = max(manifest.nextSequence, wal.nextSequenceNumber)
        return (stageManifest(), manifest.walStartSegment)
    }

    /// Puts a flushed table on the read path once the manifest naming it is durable and
    /// its WAL segments are released, then drops its memtable.
    func finishFlush(_ job: Flusher.Job, result: Result<SSTableReader, KVError>) {
        switch result {
        case .failure(let error):
            logger.error("flush failed", metadata: ["file": "\(job.path)", "error": "\(error)"])
            fail(error)
        case .success(let reader):
            frozen.removeAll { $0.ordinal == job.ordinal }
            insertTable(StorageEngine.LiveTable(number: job.number, level: 0, reader: reader))
            tableBytesWritten += reader.fileSizeBytes
            flushCount += 1
            flushedThrough = max(flushedThrough, job.ordinal)
            let ready = flushWaiters.filter { $0.through <= flushedThrough }
            flushWaiters.removeAll { $0.through <= flushedThrough }
            for w in ready { w.continuation.resume() }
            resumeStalledWriters()
            if settings.backgroundCompaction { compactionRequests?.yield(.background) }
        }
    }

    /// Stops accepting writes after a background failure (the WAL still holds them).
    func fail(_ error: KVError) {
        backgroundFailure = backgroundFailure ?? error
        resumeStalledWriters()
        let waiters = flushWaiters
        flushWaiters = []
        for w in waiters { w.continuation.resume() }
    }

    func currentFailure() -> KVError? { backgroundFailure }

    func insertTable(_ table: LiveTable) {
        let position = tables.firstIndex { $0.reader.metadata.maxTimestamp < table.reader.metadata.maxTimestamp }
        tables.insert(table, at: position ?? tables.count)
    }

    func allocateTableNumber() -> UInt64 { manifest.allocateFileNumber() }

    // MARK: Compaction

    /// Flushes the memtables, then merges every table into one sorted run, dropping
    /// tombstones and expired values past the grace period (major compaction). Returns
    /// when the new tables are live. Cost: reads and rewrites all data, off this executor.
    public func compact() async throws(KVError) {
        try await flush()
        guard let requests = compactionRequests else { throw .closed }
        do {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                requests.yield(.major(c))
            }
        } catch let error as KVError {
            throw error
        } catch {
            throw .closed
        }
    }

    /// The next compaction (all tables when `major`), or nil when none is due, one is
    /// already running, or the engine is closing.
    func nextCompactionJob(major: Bool) -> Compactor.Job? {
        guard !isClosed, !compactionInProgress, backgroundFailure == nil, !tables.isEmpty else { return nil }
        let descriptors = tables.map {
            TableDescriptor(id: $0.number, level: $0.level, sizeBytes: $0.reader.fileSizeBytes, metadata: $0.reader.metadata)
        }
        let plan: CompactionPlan
        if major {
            let level = settings.tables.compaction.strategy == .leveled ? max(1, tables.map(\.level).max() ?? 1) : 0
            plan = CompactionPlan(
                inputs: tables.map(\.number), outputLevel: level,
                reason: .sizeTieredBucket(averageBytes: descriptors.reduce(0) { $0 + $1.sizeBytes } / UInt64(tables.count)))
        } else {
            if let next = CompactionPlanner(settings: settings.tables.compaction).nextCompaction(tables: descriptors) {
                plan = next
            } else if writeStall == .stop, let relief = stallReliefPlan() {
                // Writes are stopped but no table set fits the strategy's rules (e.g. sizes
                // too different to share a size tier): merge anyway, or writes wait forever.
                plan = relief
            } else {
                return nil
            }
        }
        let inputSet = Set(plan.inputs)
        let inputs = tables.filter { inputSet.contains($0.number) }
        var outside = tables.filter { !inputSet.contains($0.number) }.map { OlderVersionSource(table: $0.reader) }
        for memtable in [active] + frozen.map(\.memtable) {
            if let source = OlderVersionSource(memtable: memtable) { outside.append(source) }
        }
        // Outputs never hold more bytes than the inputs; one spare for the last partial file.
        let inputBytes = inputs.reduce(0) { $0 + $1.reader.fileSizeBytes }
        let maxOutputs = Int(inputBytes / UInt64(max(1, settings.tables.targetFileSizeBytes))) + 2
        let numbers = (0..<maxOutputs).map { _ in manifest.allocateFileNumber() }
        compactionInProgress = true
        return Compactor.Job(
            plan: plan, inputs: inputs,
            purge: PurgeRule(
                nowMillis: clock.nowMillis(), graceMillis: settings.tables.compaction.tombstoneGraceMillis,
                outside: outside),
            outputNumbers: numbers, directory: directory, settings: settings.tables, cache: blockCache,
            manifest: manifestStore)
    }

    /// A compaction that brings the stall table count down: the smallest tables
    /// (size-tiered), or every level-0 and level-1 table into level 1 (leveled).
    func stallReliefPlan() -> CompactionPlan? {
        let compaction = settings.tables.compaction
        let inputs: [LiveTable]
        let level: Int
        switch compaction.strategy {
        case .sizeTiered:
            inputs = Array(tables.sorted { $0.reader.fileSizeBytes < $1.reader.fileSizeBytes }
                .prefix(max(2, compaction.maxThreshold)))
            level = 0
        case .leveled:
            inputs = tables.filter { $0.level <= 1 }
            level = 1
        }
        guard inputs.count >= 2 else { return nil }
        let bytes = inputs.reduce(0) { $0 + $1.reader.fileSizeBytes }
        return CompactionPlan(
            inputs: inputs.map(\.number), outputLevel: level,
            reason: .sizeTieredBucket(averageBytes: bytes / UInt64(inputs.count)))
    }

    /// Swaps a compaction's inputs for its outputs in the in-memory manifest and returns
    /// that state for the compactor to write (off this executor), or nil when an input
    /// was quarantined meanwhile: its data was merged in, so the outputs are unusable and
    /// the compactor deletes them.
    func stageCompaction(_ job: Compactor.Job, outputs: [LiveTable]) -> ManifestStore.Update? {
        let inputs = Set(job.inputs.map(\.number))
        guard inputs.allSatisfy({ n in tables.contains { $0.number == n } }) else {
            compactionInProgress = false
            return nil
        }
        manifest.tables.removeAll { inputs.contains($0.number) }
        for o in outputs {
            manifest.tables.append(Manifest.Table(number: o.number, level: o.level, sizeBytes: o.reader.fileSizeBytes))
        }
        return stageManifest()
    }

    /// Puts a compaction's outputs on the read path in place of its inputs once the
    /// manifest naming them is durable (`written`). Returns the input files, which the
    /// compactor deletes; none when the manifest write failed.
    func finishCompaction(_ job: Compactor.Job, outputs: [LiveTable], written: Result<Void, KVError>) -> [String] {
        compactionInProgress = false
        if case .failure(let error) = written {
            logger.error("manifest write failed after compaction", metadata: ["error": "\(error)"])
            fail(error)
            return []
        }
        let inputs = Set(job.inputs.map(\.number))
        tables.removeAll { inputs.contains($0.number) }
        for o in outputs {
            insertTable(o)
            tableBytesWritten += o.reader.fileSizeBytes
        }
        for input in job.inputs { blockCache?.evictAll(tableID: input.reader.cacheID) }
        compactionCount += 1
        logger.debug(
            "compaction finished", metadata: ["inputs": "\(inputs.count)", "outputs": "\(outputs.count)"])
        resumeStalledWriters()
        return job.inputs.map(\.reader.path)
    }

    /// Records a failed compaction. A checksum failure quarantines the damaged input.
    func failCompaction(_ job: Compactor.Job, error: KVError) {
        compactionInProgress = false
        logger.error("compaction failed", metadata: ["error": "\(error)"])
        if case let .corruption(path, _, _) = error, let table = job.inputs.first(where: { $0.reader.path == path }) {
            quarantine(table, error: error)
        } else {
            fail(error)
        }
        resumeStalledWriters()
    }
}
