import Foundation
import KVCore
import PropertyBased
import Testing
@testable import KVStorage

/// Model-based test: long random sequences of operations run against the engine
/// (tiny memtables, so flushes, compactions and WAL replays really happen) and
/// against a dictionary holding the newest record per key; every read must agree.
@Suite struct StorageEngineModelTests {
    /// One generated step: `kind` picks the operation, `key` one of 16 keys, `n` a
    /// value length, TTL, timestamp offset or clock step.
    typealias Step = (kind: Int, key: Int, n: Int)

    static let steps = zip(Gen.int(in: 0...99), Gen.int(in: 0...15), Gen.int(in: 0...600))
        .map { Step(kind: $0, key: $1, n: $2) }
        .array(of: 150...400)

    static func key(_ k: Int) -> Key {
        // Half text keys, half binary keys with zero bytes.
        k % 2 == 0 ? Key("key-\(k)") : Key([UInt8(k), 0, 255, 0])
    }

    static func value(_ step: Int, _ length: Int) -> Value {
        Value((0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ step) })
    }

    @Test func randomOperationSequencesMatchADictionaryModel() async {
        await propertyCheck(count: 12, input: Self.steps) { steps in
            try await Self.run(steps, strategy: .sizeTiered)
        }
    }

    @Test func leveledCompactionMatchesTheModelToo() async {
        await propertyCheck(count: 5, input: Self.steps) { steps in
            try await Self.run(steps, strategy: .leveled)
        }
    }

    static func run(_ steps: [Step], strategy: CompactionStrategy) async throws {
        let dir = TemporaryDirectory("model")
        defer { dir.remove() }
        let clock = ManualClock(1_000_000)
        var settings = tinySettings()
        settings.tables.compaction.strategy = strategy
        settings.tables.compaction.level0CompactionTrigger = 2
        settings.tables.compaction.level1MaxBytes = 16 << 10
        settings.rowCacheBytes = strategy == .leveled ? 4 << 10 : 0
        var engine = try await StorageEngine.open(
            directory: dir.path, settings: settings, clock: clock, logger: quietLogger)
        var model: [Key: Record] = [:]
        var physical: UInt64 = 1_000_000

        func write(_ key: Key, _ record: Record) async throws {
            try await engine.apply([Entry(key: key, record: record)])
            model[key] = model[key].map { Record.newest($0, record) } ?? record
        }

        for (i, step) in steps.enumerated() {
            physical += 1
            let key = Self.key(step.key)
            let now = Timestamp(physicalMillis: physical, logical: 0)
            switch step.kind {
            case 0..<40:
                try await write(key, .value(Self.value(i, step.n), at: now))
            case 40..<50:
                try await write(
                    key, .value(Self.value(i, step.n % 50), at: now, expiresAtMillis: clock.nowMillis() + UInt64(step.n)))
            case 50..<60:
                try await write(key, .tombstone(at: now))
            case 60..<65:
                // A late write with an older timestamp (a repair): loses to anything newer.
                let older = Timestamp(physicalMillis: physical - UInt64(min(step.n, 500)), logical: 1)
                try await write(key, .value(Self.value(i, 3), at: older))
            case 65..<85:
                #expect(try await engine.get(key) == model[key], "raw record of \(key) at step \(i)")
                #expect(
                    try await engine.value(for: key) == model[key]?.visibleValue(nowMillis: clock.nowMillis()),
                    "visible value of \(key) at step \(i)")
            case 85..<89:
                try await engine.flush()
            case 89..<91:
                try await engine.compact()
            case 91..<94:
                await engine.close()
                engine = try await StorageEngine.open(
                    directory: dir.path, settings: settings, clock: clock, logger: quietLogger)
            default:
                clock.advance(by: UInt64(step.n))
            }
        }

        // Every key, and a full scan, agree with the model at the end.
        for k in 0...15 {
            #expect(try await engine.get(Self.key(k)) == model[Self.key(k)])
        }
        var scanned: [Entry] = []
        var cursor: ScanCursor? = nil
        repeat {
            let page = try await engine.scan(tokens: Token.min...Token.max, after: cursor, limit: 5)
            scanned += page.entries
            cursor = page.resume
        } while cursor != nil
        #expect(scanned == sortedEntries(model.map { Entry(key: $0.key, record: $0.value) }))
        let stats = await engine.stats()
        #expect(stats.tablesPerLevel.reduce(0, +) == stats.tableCount)
        await engine.close()
    }
}
