import KVCore

/// What the compactor is asked to do.
enum CompactionRequest: Sendable {
    /// Run whatever the planner finds worth running (after a flush, or a stall).
    case background
    /// Merge every table into one sorted run (`StorageEngine.compact()`); resumed when done.
    case major(CheckedContinuation<Void, any Error>)
}

/// Runs compactions one at a time, off the engine's executor: `CompactionJob`
/// merges the input tables (newest version per key wins), drops what `PurgeRule`
/// allows and writes the outputs; the compactor makes them durable, opens them and
/// hands them to the engine, which swaps them in through the manifest; the compactor
/// writes that manifest and deletes the inputs, so no fsync runs on the engine's loop.
///
/// One per engine, a child task of the engine's background task.
actor Compactor {
    private let executor: BackgroundExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// A compactor whose jobs run on `executor` (the engine's background thread).
    init(executor: BackgroundExecutor) { self.executor = executor }

    /// One compaction, with everything needed to run it without the engine.
    struct Job: Sendable {
        var plan: CompactionPlan
        var inputs: [StorageEngine.LiveTable]
        /// What may be dropped: tombstones and expired values past the grace period
        /// that no table or memtable outside the compaction could resurrect.
        var purge: PurgeRule
        /// File numbers reserved for the outputs (more than the outputs can need).
        var outputNumbers: [UInt64]
        var directory: String
        var settings: TableSettings
        var cache: BlockCache?
        /// Where the manifest naming the outputs is written.
        var manifest: ManifestStore
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
        var numbers = job.outputNumbers.makeIterator()
        let directory = job.directory
        let merge = CompactionJob(inputs: job.inputs.map(\.reader), settings: job.settings, purge: job.purge)
        let outcome = Result { () throws(KVError) -> [StorageEngine.LiveTable] in
            let result = try merge.run(createdAtMillis: job.purge.nowMillis) { () throws(KVError) -> String in
                guard let number = numbers.next() else {
                    throw .invalidArgument("compaction produced more outputs than reserved file numbers")
                }
                return directory + "/" + Manifest.tableFileName(number)
            }
            try DiskDirectory.sync(directory)
            var outputs: [StorageEngine.LiveTable] = []
            do throws(KVError) {
                for output in result.outputs {
                    let name = output.path.split(separator: "/").last.map(String.init) ?? ""
                    guard let number = Manifest.tableNumber(fileName: name) else {
                        throw .invalidArgument("unexpected compaction output \(output.path)")
                    }
                    let reader = try SSTableReader.open(path: output.path, cache: job.cache)
                    outputs.append(StorageEngine.LiveTable(number: number, level: job.plan.outputLevel, reader: reader))
                }
            } catch {
                for output in result.outputs { try? DiskDirectory.remove(output.path) }
                throw error
            }
            return outputs
        }
        switch outcome {
        case .success(let outputs):
            // The manifest's fsyncs and the deletions happen here, on the background thread.
            guard let update = await engine.stageCompaction(job, outputs: outputs) else {
                for o in outputs { try? DiskDirectory.remove(o.reader.path) }
                return nil
            }
            let written = Result { () throws(KVError) in try job.manifest.write(update) }
            let obsolete = await engine.finishCompaction(job, outputs: outputs, written: written)
            if case .failure(let error) = written { return error }
            for path in obsolete { try? DiskDirectory.remove(path) }
            try? DiskDirectory.sync(directory)
            return nil
        case .failure(let error):
            await engine.failCompaction(job, error: error)
            return error
        }
    }
}
