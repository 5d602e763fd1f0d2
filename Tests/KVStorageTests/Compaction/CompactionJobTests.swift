import KVCore
import Testing
@testable import KVStorage

@Suite struct CompactionJobTests {
    let day: UInt64 = 24 * 3600 * 1000
    let grace: UInt64 = 10 * 24 * 3600 * 1000

    @Test func purgeRuleNeedsGraceAndNoOlderVersionOutside() {
        let now: UInt64 = 100 * day
        let key = Key("k")
        let oldTombstone = Entry(key: key, record: .tombstone(at: ts(now - grace - 1)))
        let freshTombstone = Entry(key: key, record: .tombstone(at: ts(now - grace + 1)))
        let longExpired = Entry(key: key, record: .value(Value("v"), at: ts(1), expiresAtMillis: now - grace))
        let justExpired = Entry(key: key, record: .value(Value("v"), at: ts(1), expiresAtMillis: now - 1))
        let live = Entry(key: key, record: .value(Value("v"), at: ts(1)))
        let alone = PurgeRule(nowMillis: now, graceMillis: grace, outside: [])
        #expect(alone.isPurgeable(oldTombstone))
        #expect(!alone.isPurgeable(freshTombstone))
        #expect(alone.isPurgeable(longExpired))
        #expect(!alone.isPurgeable(justExpired))
        #expect(!alone.isPurgeable(live))
        // An outside table covering the token with older data blocks the purge …
        let olderOutside = OlderVersionSource(tokens: Token.min...Token.max, minTimestamp: ts(0))
        #expect(!PurgeRule(nowMillis: now, graceMillis: grace, outside: [olderOutside]).isPurgeable(oldTombstone))
        // … but not when it only holds newer data, or another token span, or its filter says no.
        let newerOutside = OlderVersionSource(tokens: Token.min...Token.max, minTimestamp: ts(now))
        let elsewhere = OlderVersionSource(
            tokens: Token(rawValue: key.token.rawValue &+ 1)...Token(rawValue: key.token.rawValue &+ 1), minTimestamp: ts(0))
        let filtered = OlderVersionSource(tokens: Token.min...Token.max, minTimestamp: ts(0), mayContain: { _ in false })
        #expect(
            PurgeRule(nowMillis: now, graceMillis: grace, outside: [newerOutside, elsewhere, filtered])
                .isPurgeable(oldTombstone))
        // A frozen memtable is checked exactly: only its own older version of the key blocks.
        let memtable = Memtable()
        memtable.put(Entry(key: Key("other"), record: .value(Value("v"), at: ts(0))))
        memtable.freeze()
        let withMemtable = PurgeRule(nowMillis: now, graceMillis: grace, outside: [OlderVersionSource(frozenMemtable: memtable)])
        #expect(withMemtable.isPurgeable(oldTombstone))
        #expect(OlderVersionSource(memtable: Memtable()) == nil)
        #expect(!PurgeRule(nowMillis: now, graceMillis: grace, outside: [OlderVersionSource(memtable: memtable)!]).isPurgeable(oldTombstone), "bounds only: any key may be there")
        let holding = Memtable()
        holding.put(Entry(key: key, record: .value(Value("v"), at: ts(0))))
        holding.freeze()
        #expect(!PurgeRule(nowMillis: now, graceMillis: grace, outside: [OlderVersionSource(frozenMemtable: holding)]).isPurgeable(oldTombstone))
    }

    /// Writes tables, compacts them, and checks the result against the expected survivors.
    @Test func keepsNewestAndDropsOnlyPurgeableData() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let now: UInt64 = 100 * day
        let old = ts(now - 30 * day)
        let recent = ts(now - day)
        // Table A (older): values for k0..k99.
        let a = sortedEntries((0..<100).map { Entry(key: Key("k\($0)"), record: .value(Value("a"), at: old)) })
        // Table B (newer): k0..k19 deleted long ago (purgeable), k20..k29 deleted recently
        // (within grace), k30..k39 overwritten, k40..k49 expired long ago, k50..k59 expired recently.
        var bEntries: [Entry] = []
        for i in 0..<20 { bEntries.append(Entry(key: Key("k\(i)"), record: .tombstone(at: ts(now - 20 * day)))) }
        for i in 20..<30 { bEntries.append(Entry(key: Key("k\(i)"), record: .tombstone(at: recent))) }
        for i in 30..<40 { bEntries.append(Entry(key: Key("k\(i)"), record: .value(Value("b"), at: recent))) }
        for i in 40..<50 {
            bEntries.append(Entry(key: Key("k\(i)"), record: .value(Value("x"), at: ts(now - 25 * day), expiresAtMillis: now - 20 * day)))
        }
        for i in 50..<60 {
            bEntries.append(Entry(key: Key("k\(i)"), record: .value(Value("y"), at: recent, expiresAtMillis: now - 1)))
        }
        let b = sortedEntries(bEntries)
        try writeTable(a, to: dir.file("a.sst"))
        try writeTable(b, to: dir.file("b.sst"))
        let inputs = try [SSTableReader.open(path: dir.file("b.sst"), cache: nil), SSTableReader.open(path: dir.file("a.sst"), cache: nil)]
        var counter = 0
        let job = CompactionJob(
            inputs: inputs, settings: .default, purge: PurgeRule(nowMillis: now, graceMillis: grace, outside: []))
        let result = try job.run(createdAtMillis: now) { () throws(KVError) -> String in
            counter += 1
            return dir.file("out-\(counter).sst")
        }
        #expect(result.entriesRead == 160)
        #expect(result.tombstonesPurged == 20)
        #expect(result.expiredPurged == 10)
        #expect(result.outputs.count == 1)
        let out = try SSTableReader.open(path: result.outputs[0].path, cache: nil)
        var iterator = try out.makeIterator()
        let merged = Dictionary(uniqueKeysWithValues: try drain(&iterator).map { ($0.key, $0.record) })
        #expect(merged.count == 70)
        for i in 0..<20 { #expect(merged[Key("k\(i)")] == nil) }
        for i in 20..<30 { #expect(merged[Key("k\(i)")] == .tombstone(at: recent)) }
        for i in 30..<40 { #expect(merged[Key("k\(i)")]?.value == Value("b")) }
        for i in 40..<50 { #expect(merged[Key("k\(i)")] == nil) }
        for i in 50..<60 { #expect(merged[Key("k\(i)")]?.value == Value("y")) }
        for i in 60..<100 { #expect(merged[Key("k\(i)")]?.value == Value("a")) }
        #expect(result.entriesWritten == 70)
        #expect(out.metadata.tombstoneCount == 10)
    }

    @Test func keepsTombstonesWhenAnOutsideTableMayHoldOlderVersions() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let now: UInt64 = 100 * day
        let tombstones = sortedEntries((0..<50).map { Entry(key: Key("k\($0)"), record: .tombstone(at: ts(now - 20 * day))) })
        let olderValues = sortedEntries((0..<50).map { Entry(key: Key("k\($0)"), record: .value(Value("v"), at: ts(1))) })
        try writeTable(tombstones, to: dir.file("t.sst"))
        try writeTable(olderValues, to: dir.file("outside.sst"))
        let input = try SSTableReader.open(path: dir.file("t.sst"), cache: nil)
        let outside = try SSTableReader.open(path: dir.file("outside.sst"), cache: nil)
        let job = CompactionJob(
            inputs: [input], settings: .default,
            purge: PurgeRule(nowMillis: now, graceMillis: grace, outside: [OlderVersionSource(table: outside)]))
        let result = try job.run(createdAtMillis: now) { () throws(KVError) -> String in dir.file("o.sst") }
        #expect(result.tombstonesPurged == 0)
        #expect(result.outputs.first?.metadata.tombstoneCount == 50)
    }

    @Test func splitsOutputsAtTheTargetSizeBetweenTokens() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var random = TestRandom(seed: 21)
        let entries = sortedEntries((0..<3_000).map { Entry(key: Key("k\($0)"), record: .value(Value(random.bytes(100)), at: ts(1))) })
        try writeTable(entries, to: dir.file("in.sst"))
        var settings = TableSettings()
        settings.targetFileSizeBytes = 64 << 10
        var counter = 0
        let job = CompactionJob(
            inputs: [try SSTableReader.open(path: dir.file("in.sst"), cache: nil)], settings: settings,
            purge: .keepEverything)
        let result = try job.run(createdAtMillis: 5) { () throws(KVError) -> String in
            counter += 1
            return dir.file("split-\(counter).sst")
        }
        #expect(result.outputs.count >= 4)
        var all: [Entry] = []
        for (i, output) in result.outputs.enumerated() {
            #expect(output.sizeBytes < UInt64(settings.targetFileSizeBytes + 2 * settings.blockSizeBytes + 4096))
            if i > 0 { #expect(result.outputs[i - 1].metadata.maxToken < output.metadata.minToken, "disjoint spans") }
            var iterator = try SSTableReader.open(path: output.path, cache: nil).makeIterator()
            all += try drain(&iterator)
        }
        #expect(all == entries)
    }
}
