import KVCore
import PropertyBased
import Testing
@testable import KVStorage

@Suite struct MergeIteratorTests {
    @Test func newestVersionWinsAcrossSources() throws {
        let a = Key("a")
        let b = Key("b")
        let c = Key("c")
        let newer = ArrayEntrySource(
            sortedEntries([
                Entry(key: a, record: .value(Value("a2"), at: ts(20))),
                Entry(key: b, record: .tombstone(at: ts(20))),
            ]))
        let older = ArrayEntrySource(
            sortedEntries([
                Entry(key: a, record: .value(Value("a1"), at: ts(10))),
                Entry(key: b, record: .value(Value("b1"), at: ts(10))),
                Entry(key: c, record: .value(Value("c1"), at: ts(30), expiresAtMillis: 100)),
            ]))
        // An "older" source can still hold a newer timestamp (e.g. a repaired write).
        let stale = ArrayEntrySource([Entry(key: a, record: .value(Value("a3"), at: ts(25)))])
        var all = try MergeIterator(sources: [newer, older, stale])
        let everything = try drain(&all)
        #expect(everything.count == 3)
        #expect(everything.first { $0.key == a }?.record == .value(Value("a3"), at: ts(25)))
        #expect(everything.first { $0.key == b }?.record == .tombstone(at: ts(20)))
        #expect(all.entriesRead == 6)

        var visible = try MergeIterator(
            sources: [ArrayEntrySource(everything)], options: .visible(atMillis: 200))
        #expect(try drain(&visible).map(\.key) == [a])
        var beforeExpiry = try MergeIterator(
            sources: [ArrayEntrySource(everything)], options: .visible(atMillis: 50))
        #expect(Set(try drain(&beforeExpiry).map(\.key)) == [a, c])
    }

    @Test func matchesAModelOverRandomSources() async {
        let op = zip(Gen.int(in: 0...3), Gen.int(in: 0...80), Gen.int(in: 0...9), Gen.bool)
        await propertyCheck(count: 50, input: op.array(of: 0...300)) { operations in
            var perSource: [[Key: Record]] = Array(repeating: [:], count: 4)
            var model: [Key: Record] = [:]
            for (source, keyNumber, time, tombstone) in operations {
                let key = Key("k\(keyNumber)")
                let record: Record = tombstone ? .tombstone(at: ts(UInt64(time))) : .value(Value("\(source)"), at: ts(UInt64(time)))
                perSource[source][key] = perSource[source][key].map { Record.newest($0, record) } ?? record
                model[key] = model[key].map { Record.newest($0, record) } ?? record
            }
            let sources: [any SortedEntrySource] = perSource.map { dictionary in
                ArrayEntrySource(sortedEntries(dictionary.map { Entry(key: $0.key, record: $0.value) }))
            }
            guard var merge = try? MergeIterator(sources: sources) else {
                Issue.record("merge failed")
                return
            }
            let merged = (try? drain(&merge)) ?? []
            #expect(merged == sortedEntries(model.map { Entry(key: $0.key, record: $0.value) }))
        }
    }

    @Test func mergesMemtableAndSSTable() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let old = sortedEntries((0..<500).map { Entry(key: Key("k\($0)"), record: .value(Value("old"), at: ts(1))) })
        let path = dir.file("t.sst")
        try writeTable(old, to: path)
        let reader = try SSTableReader.open(path: path, cache: nil)
        let memtable = Memtable()
        for i in stride(from: 0, to: 500, by: 2) {
            memtable.put(Entry(key: Key("k\(i)"), record: i % 4 == 0 ? .tombstone(at: ts(2)) : .value(Value("new"), at: ts(2))))
        }
        var merge = try MergeIterator(
            sources: [memtable.makeIterator(), try reader.makeIterator()], options: .visible(atMillis: 0))
        let out = try drain(&merge)
        #expect(out.count == 500 - 125)
        #expect(out.filter { $0.record.value == Value("new") }.count == 125)
    }
}
