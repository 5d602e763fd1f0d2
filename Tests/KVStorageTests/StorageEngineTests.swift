import Foundation
import KVCore
import Testing
@testable import KVStorage

@Suite struct StorageEngineTests {
    @Test func putGetDeleteAcrossFlushAndReopen() async throws {
        let dir = TemporaryDirectory("engine")
        defer { dir.remove() }
        let clock = ManualClock()
        var engine = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), clock: clock, logger: quietLogger)
        for i in 0..<500 {
            try await engine.put(Key("key-\(i)"), Value("value-\(i)"), at: ts(1000 + UInt64(i)))
        }
        try await engine.delete(Key("key-7"), at: ts(5000))
        #expect(try await engine.value(for: Key("key-3")) == Value("value-3"))
        #expect(try await engine.value(for: Key("key-7")) == nil)
        #expect(try await engine.get(Key("key-7"))?.isTombstone == true)
        let stats = await engine.stats()
        #expect(stats.flushes > 0, "a tiny memtable must have flushed")
        await engine.close()

        var wide = tinySettings()
        wide.tables.targetFileSizeBytes = 1 << 20
        engine = try await StorageEngine.open(directory: dir.path, settings: wide, clock: clock, logger: quietLogger)
        for i in [0, 3, 250, 499] { #expect(try await engine.value(for: Key("key-\(i)")) == Value("value-\(i)")) }
        #expect(try await engine.get(Key("key-7"))?.isTombstone == true)
        #expect(try await engine.get(Key("missing")) == nil)
        try await engine.compact()
        #expect(await engine.stats().tableCount == 1)
        #expect(try await engine.value(for: Key("key-499")) == Value("value-499"))
        await engine.close()
    }

    @Test func olderTimestampDoesNotWinAndTTLExpires() async throws {
        let dir = TemporaryDirectory("engine")
        defer { dir.remove() }
        let clock = ManualClock(10_000)
        let engine = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), clock: clock, logger: quietLogger)
        try await engine.put(Key("k"), Value("new"), at: ts(200))
        try await engine.flush()
        try await engine.put(Key("k"), Value("old"), at: ts(100))
        #expect(try await engine.value(for: Key("k")) == Value("new"))
        try await engine.put(Key("t"), Value("ttl"), at: ts(300), expiresAtMillis: 10_500)
        #expect(try await engine.value(for: Key("t")) == Value("ttl"))
        clock.advance(by: 500)
        #expect(try await engine.value(for: Key("t")) == nil)
        #expect(try await engine.get(Key("t"))?.value == Value("ttl"), "get returns the expired record itself")
        await engine.close()
    }

    @Test func scanPagesThroughATokenRangeInOrder() async throws {
        let dir = TemporaryDirectory("engine")
        defer { dir.remove() }
        let engine = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), clock: ManualClock(), logger: quietLogger)
        var expected: [Entry] = []
        for i in 0..<300 {
            let e = Entry(key: Key("s\(i)"), record: .value(Value("v\(i)"), at: ts(1 + UInt64(i))))
            try await engine.apply([e])
            expected.append(e)
        }
        try await engine.delete(Key("s5"), at: ts(1000))
        expected[5].record = .tombstone(at: ts(1000))
        expected = sortedEntries(expected)
        var got: [Entry] = []
        var cursor: ScanCursor? = nil
        repeat {
            let page = try await engine.scan(tokens: Token.min...Token.max, after: cursor, limit: 37)
            got += page.entries
            cursor = page.resume
        } while cursor != nil
        #expect(got == expected)
        // A sub-range, visible values only, through the AsyncSequence.
        let range = expected[100].token...expected[200].token
        var visible: [Entry] = []
        for try await e in engine.entries(tokens: range, pageSize: 16, visibleOnly: true) { visible.append(e) }
        #expect(visible == expected[100...200].filter { !$0.record.isTombstone })
        await engine.close()
    }

    @Test func edgeInputs() async throws {
        let dir = TemporaryDirectory("engine")
        defer { dir.remove() }
        let limits = Limits()
        let engine = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), clock: ManualClock(), logger: quietLogger)
        let bigKey = Key([UInt8](repeating: 0xAB, count: limits.maxKeyBytes))
        let bigValue = Value([UInt8](repeating: 7, count: limits.maxValueBytes))
        let binaryKey = Key([0, 255, 0, 1, 10, 13])
        try await engine.put(Key("empty"), Value([]), at: ts(1))
        try await engine.put(bigKey, bigValue, at: ts(1))
        try await engine.put(binaryKey, Value([0, 0, 0]), at: ts(1))
        await #expect(throws: KVError.keyTooLarge(size: limits.maxKeyBytes + 1, limit: limits.maxKeyBytes)) {
            try await engine.put(Key([UInt8](repeating: 1, count: limits.maxKeyBytes + 1)), Value("v"), at: ts(1))
        }
        await #expect(throws: KVError.valueTooLarge(size: limits.maxValueBytes + 1, limit: limits.maxValueBytes)) {
            try await engine.put(Key("v"), Value([UInt8](repeating: 1, count: limits.maxValueBytes + 1)), at: ts(1))
        }
        await #expect(throws: KVError.emptyKey) { try await engine.put(Key([]), Value("v"), at: ts(1)) }
        for round in 0..<2 {
            #expect(try await engine.value(for: Key("empty")) == Value([]))
            #expect(try await engine.value(for: bigKey) == bigValue)
            #expect(try await engine.value(for: binaryKey) == Value([0, 0, 0]))
            #expect(try await engine.value(for: Key("v")) == nil)
            if round == 0 { try await engine.flush() }
        }
        await engine.close()
    }

    @Test func runsOnACallerSuppliedExecutor() async throws {
        final class InlineQueueExecutor: SerialExecutor, @unchecked Sendable {
            private let lock = NSLock()
            private var jobs: [UnownedJob] = []
            private var running = false
            func enqueue(_ job: consuming ExecutorJob) {
                let job = UnownedJob(job)
                lock.lock()
                jobs.append(job)
                let start = !running
                running = true
                lock.unlock()
                guard start else { return }
                Thread {
                    while true {
                        self.lock.lock()
                        guard !self.jobs.isEmpty else {
                            self.running = false
                            self.lock.unlock()
                            return
                        }
                        let next = self.jobs.removeFirst()
                        self.lock.unlock()
                        next.runSynchronously(on: self.asUnownedSerialExecutor())
                    }
                }.start()
            }
        }
        let dir = TemporaryDirectory("engine")
        defer { dir.remove() }
        let executor = InlineQueueExecutor()
        let engine = try await StorageEngine.open(
            directory: dir.path, settings: tinySettings(commitMode: .sync), clock: ManualClock(), logger: quietLogger, executor: executor)
        try await engine.put(Key("a"), Value("b"), at: ts(1))
        #expect(try await engine.value(for: Key("a")) == Value("b"))
        let stats = await engine.stats()
        #expect(stats.walSyncs >= 1)
        await engine.close()
    }
}

/// An actor on the same executor as an engine: a request handler on the engine's loop.
actor SameLoopCaller {
    let executor: BackgroundExecutor
    init(executor: BackgroundExecutor) { self.executor = executor }
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The record read, and whether the read started on the engine's executor (the
    /// condition for reading in place).
    func read(_ key: Key, from engine: StorageEngine) async throws -> (Record?, Bool) {
        let onExecutor = executor.isIsolatingCurrentContext() == true
        return (try await engine.read(key), onExecutor)
    }

    /// `readImmediately` and then `applyImmediately` of `entry`, from the engine's executor:
    /// the read's record (nil when it did not answer), and whether the write answered.
    func immediately(read key: Key, apply entry: Entry, on engine: StorageEngine) throws -> (Record??, Bool) {
        let read = try engine.readImmediately(key).map { try $0.get() }
        guard let applied = engine.applyImmediately([entry]) else { return (read, false) }
        try applied.get()
        return (read, true)
    }
}

@Suite struct EngineReadPathTests {
    /// `read` takes the in-place path on the engine's own executor and the actor hop from
    /// anywhere else; both must see the memtable and the tables alike.
    @Test func readsTheSameInPlaceAndAcrossAHop() async throws {
        let dir = TemporaryDirectory("read-in-place")
        defer { dir.remove() }
        // A serial executor with a thread of its own that knows when it runs, as a shard's loop does.
        let executor = BackgroundExecutor(name: "read-path-test", niceness: 0)
        defer { executor.shutdown() }
        let engine = try await StorageEngine.open(
            directory: dir.path, settings: tinySettings(), clock: ManualClock(), logger: quietLogger, executor: executor)
        let caller = SameLoopCaller(executor: executor)
        try await engine.put(Key("flushed"), Value("1"), at: ts(1))
        try await engine.flush()
        try await engine.put(Key("fresh"), Value("2"), at: ts(2))
        try await engine.delete(Key("flushed"), at: ts(3))
        let expected: [(Key, Record?)] = [
            (Key("flushed"), .tombstone(at: ts(3))), (Key("fresh"), .value(Value("2"), at: ts(2))), (Key("absent"), nil),
        ]
        for (key, record) in expected {
            let (inPlace, onExecutor) = try await caller.read(key, from: engine)
            #expect(onExecutor)
            #expect(inPlace == record)
            #expect(executor.isIsolatingCurrentContext() == false)
            #expect(try await engine.read(key) == record)
        }
        await engine.close()
    }
}

extension EngineReadPathTests {
    /// The immediate paths answer only on the engine's own executor, and a write only when
    /// it has nothing to wait for: in `sync` mode it declines and applies nothing.
    @Test(arguments: [CommitMode.periodic(milliseconds: 1000), .sync])
    func immediatePathsAnswerOnlyOnTheEnginesExecutor(_ mode: CommitMode) async throws {
        let dir = TemporaryDirectory("immediate")
        defer { dir.remove() }
        let executor = BackgroundExecutor(name: "immediate-test", niceness: 0)
        defer { executor.shutdown() }
        let engine = try await StorageEngine.open(
            directory: dir.path, settings: tinySettings(commitMode: mode), clock: ManualClock(), logger: quietLogger,
            executor: executor)
        try await engine.put(Key("k"), Value("1"), at: ts(1))
        let write = Entry(key: Key("w"), record: .value(Value("2"), at: ts(2)))

        // Elsewhere: neither answers, and nothing is written.
        #expect(engine.readImmediately(Key("k")) == nil)
        #expect(engine.applyImmediately([write]) == nil)
        #expect(try await engine.read(Key("w")) == nil)

        // On the engine's executor.
        let (read, wrote) = try await SameLoopCaller(executor: executor).immediately(
            read: Key("k"), apply: write, on: engine)
        #expect(read == .some(.value(Value("1"), at: ts(1))))
        let periodic = if case .periodic = mode { true } else { false }
        #expect(wrote == periodic)
        #expect(try await engine.read(Key("w")) == (periodic ? write.record : nil))
        await engine.close()
    }
}

@Suite struct BackPressureTests {
    @Test func writesStallInsteadOfLettingMemtablesAndTablesPileUp() async throws {
        let dir = TemporaryDirectory("stall")
        defer { dir.remove() }
        var settings = tinySettings()
        settings.memtableBytes = 4 << 10
        settings.maxFrozenMemtables = 1
        settings.slowdownDelayMicros = 100
        settings.tables.compaction.minThreshold = 2
        settings.tables.compaction.slowdownTableCount = 3
        settings.tables.compaction.stopTableCount = 4
        let engine = try await StorageEngine.open(
            directory: dir.path, settings: settings, clock: ManualClock(), logger: quietLogger)
        var worst = (frozen: 0, tables: 0)
        for i in 0..<300 {
            try await engine.put(Key("p\(i % 200)"), Value(String(repeating: "x", count: 40)), at: ts(1 + UInt64(i)))
            let s = await engine.stats()
            worst = (max(worst.frozen, s.frozenMemtables), max(worst.tables, s.tableCount))
        }
        let stats = await engine.stats()
        #expect(stats.stalls > 0, "writes at µs pace must have waited for fsync-paced flushes")
        #expect(worst.frozen <= 1)
        #expect(worst.tables <= 4 + 1 + 1, "stop threshold + the flush in flight + one frozen memtable")
        #expect(try await engine.value(for: Key("p5")) == Value(String(repeating: "x", count: 40)))
        await engine.close()
    }
}

@Suite struct DirectoryLockTests {
    @Test func aSecondEngineCannotOpenTheSameDirectory() async throws {
        let dir = TemporaryDirectory("lock")
        defer { dir.remove() }
        let first = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), logger: quietLogger)
        await #expect {
            _ = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), logger: quietLogger)
        } throws: { error in
            guard case KVError.io(let operation, _, _) = error else { return false }
            return operation == "flock"
        }
        await first.close()
        let second = try await StorageEngine.open(directory: dir.path, settings: tinySettings(), logger: quietLogger)
        await second.close()
    }
}

@Suite struct CommitModeTests {
    @Test func periodicModeAcknowledgesAtOnceAndCloseMakesItDurable() async throws {
        let dir = TemporaryDirectory("periodic")
        defer { dir.remove() }
        // A period no test run outlasts: under a loaded full run this test once took 17 s,
        // and a 10 s period then synced once before the check.
        var settings = tinySettings(commitMode: .periodic(milliseconds: 600_000))
        settings.memtableBytes = 1 << 20  // nothing flushed: everything must come back from the WAL
        var engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        for i in 0..<200 { try await engine.put(Key("p\(i)"), Value("v\(i)"), at: ts(1 + UInt64(i))) }
        #expect(await engine.stats().walSyncs == 0, "no sync within the 10 min period")
        await engine.close()
        engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        for i in 0..<200 { #expect(try await engine.value(for: Key("p\(i)")) == Value("v\(i)")) }
        await engine.close()
    }

    @Test func flushDropsTheWALSegmentsItCovered() async throws {
        let dir = TemporaryDirectory("walgc")
        defer { dir.remove() }
        var settings = tinySettings(commitMode: .sync)
        settings.memtableBytes = 1 << 20
        settings.wal.recycledSegments = 1
        let engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        for i in 0..<300 { try await engine.put(Key("w\(i)"), Value(String(repeating: "v", count: 100)), at: ts(1)) }
        let before = fileNames(dir.path).filter { $0.hasPrefix("wal-") }
        #expect(before.count > 2)
        try await engine.flush()
        try await engine.put(Key("after"), Value("x"), at: ts(2))
        let after = fileNames(dir.path).filter { $0.hasPrefix("wal-") }
        #expect(after.count == 1, "only the segment written after the flush remains: \(after)")
        #expect(fileNames(dir.path).filter { $0.hasPrefix("recycle-") }.count <= 2)
        await engine.close()
    }
}
