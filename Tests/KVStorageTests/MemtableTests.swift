import KVCore
import PropertyBased
import Testing
@testable import KVStorage

@Suite struct MemtableTests {
    @Test func overwriteKeepsTheNewestVersion() {
        let table = Memtable()
        let key = Key("k")
        table.put(key: key, token: key.token, record: .value(Value("old"), at: ts(10)))
        table.put(key: key, token: key.token, record: .value(Value("new"), at: ts(20)))
        table.put(key: key, token: key.token, record: .value(Value("stale"), at: ts(15)))
        #expect(table.count == 1)
        #expect(table.get(key: key, token: key.token) == .value(Value("new"), at: ts(20)))
        table.put(key: key, token: key.token, record: .tombstone(at: ts(20)))
        #expect(table.get(key: key, token: key.token) == .tombstone(at: ts(20)), "tombstone wins a tie")
        #expect(table.get(key: Key("absent"), token: Key("absent").token) == nil)
        #expect(table.minTimestamp == ts(10) && table.maxTimestamp == ts(20))
    }

    @Test func storesEmptyLargeAndExpiringRecords() {
        let table = Memtable()
        var random = TestRandom(seed: 7)
        let big = Value(random.bytes(1 << 20))
        let binaryKey = Key(random.bytes(1024))
        table.put(Entry(key: Key("empty"), record: .value(Value([]), at: ts(1))))
        table.put(Entry(key: binaryKey, record: .value(big, at: ts(2), expiresAtMillis: 99)))
        #expect(table.get(key: Key("empty"), token: Key("empty").token) == .value(Value([]), at: ts(1)))
        #expect(table.get(key: binaryKey, token: binaryKey.token) == .value(big, at: ts(2), expiresAtMillis: 99))
        #expect(table.approximateBytes > 1 << 20)
    }

    /// Random puts with tokens from a tiny set (so keys often share a token) against a model.
    @Test func sharedTokensMatchAModel() async {
        let op = zip(Gen.int(in: 0...60), Gen.int(in: 0...8), Gen.int(in: 0...4))
        await propertyCheck(count: 60, input: op.array(of: 0...400)) { operations in
            let table = Memtable()
            var model: [Key: Entry] = [:]
            for (keyNumber, time, kind) in operations {
                let key = Key(Array(repeating: UInt8(keyNumber % 7), count: keyNumber % 5) + [UInt8(keyNumber)])
                let token = Token(rawValue: UInt64(keyNumber % 3) << 62)
                let record: Record =
                    kind == 0 ? .tombstone(at: ts(UInt64(time))) : .value(Value([UInt8(kind)]), at: ts(UInt64(time)))
                table.put(Entry(token: token, key: key, record: record))
                let previous = model[key]?.record
                model[key] = Entry(token: token, key: key, record: previous.map { Record.newest($0, record) } ?? record)
            }
            var iterator = table.makeIterator()
            let actual = (try? drain(&iterator)) ?? []
            #expect(actual == sortedEntries(model.values))
            // Point reads go through the hash index, where these keys collide on tokens.
            for (key, entry) in model { #expect(table.get(key: key, token: entry.token) == entry.record) }
            #expect(table.get(key: Key([0xEE]), token: Token(rawValue: 0)) == nil)
        }
    }

    /// The hash index counts towards the memtable's size but starts small: a memtable
    /// holding one record stays far below the 8 KiB threshold small test engines use.
    @Test func aNewMemtableIsSmall() {
        let table = Memtable()
        table.put(key: Key("k"), token: Key("k").token, record: .value(Value("v"), at: ts(1)))
        #expect(table.approximateBytes < 4 << 10)
    }

    /// Point reads and overwrites find every key while the hash index doubles many times,
    /// and a key never written is not found even when its token is.
    @Test func pointReadsFindEveryKeyAcrossIndexGrowth() {
        let table = Memtable()
        let keys = (0..<20_000).map { Key("key-\($0)") }
        for (i, key) in keys.enumerated() { table.put(key: key, token: key.token, record: .value(Value([1]), at: ts(UInt64(i + 1)))) }
        for (i, key) in keys.enumerated() where i % 3 == 0 {
            table.put(key: key, token: key.token, record: .value(Value([2]), at: ts(UInt64(100_000 + i))))
        }
        #expect(table.count == keys.count)
        for (i, key) in keys.enumerated() {
            #expect(table.get(key: key, token: key.token)?.value == Value([i % 3 == 0 ? 2 : 1]))
        }
        #expect(table.get(key: Key("key-absent"), token: keys[7].token) == nil)
        #expect(table.get(key: Key("key-absent"), token: Key("key-absent").token) == nil)
    }

    /// The real property: with the token derived from the key, contents and order match the model.
    @Test func iterationMatchesSortedModel() async throws {
        let op = zip(Gen.int(in: 0...200), Gen.int(in: 0...8), Gen.int(in: 0...4))
        await propertyCheck(count: 60, input: op.array(of: 0...500)) { operations in
            let table = Memtable()
            var model: [Key: Record] = [:]
            for (keyNumber, time, kind) in operations {
                let key = Key(Array(repeating: UInt8(keyNumber % 7), count: keyNumber % 5) + [UInt8(keyNumber)])
                let record: Record =
                    kind == 0 ? .tombstone(at: ts(UInt64(time))) : .value(Value([UInt8(kind)]), at: ts(UInt64(time)))
                table.put(key: key, token: key.token, record: record)
                model[key] = model[key].map { Record.newest($0, record) } ?? record
            }
            let expected = sortedEntries(model.map { Entry(key: $0.key, record: $0.value) })
            var iterator = table.makeIterator()
            let actual = (try? drain(&iterator)) ?? []
            #expect(actual == expected)
            #expect(table.count == model.count)
            for (key, record) in model { #expect(table.get(key: key, token: key.token) == record) }
            // A token-bounded scan from the middle.
            if expected.count > 2 {
                let low = expected[expected.count / 3].token
                let high = expected[2 * expected.count / 3].token
                var ranged = table.makeIterator(tokens: low...high)
                let slice = (try? drain(&ranged)) ?? []
                #expect(slice == expected.filter { $0.token >= low && $0.token <= high })
            }
        }
    }

    @Test func keysSharingATokenAreOrderedBytewise() throws {
        let table = Memtable()
        let token = Token(rawValue: 42)
        let keys: [[UInt8]] = [[2], [1, 0], [1], [0, 255], [255], [1, 0, 0]]
        for key in keys { table.put(key: Key(key), token: token, record: .value(Value("v"), at: ts(1))) }
        table.put(key: Key([9]), token: Token(rawValue: 41), record: .value(Value("v"), at: ts(1)))
        var iterator = table.makeIterator()
        let order = try drain(&iterator).map(\.key.bytes)
        #expect(order == [[9], [0, 255], [1], [1, 0], [1, 0, 0], [2], [255]])
        var seeking = table.makeIterator()
        seeking.seek(token: token, key: Key([1, 0, 0, 0]))
        #expect(try seeking.next()?.key.bytes == [2])
    }

    /// Enough keys for a three-level tree, in random and in ascending order, some sharing
    /// tokens; contents, order, lookups and seeks match a sorted model.
    @Test(arguments: [false, true]) func manySplitsKeepOrder(ascending: Bool) throws {
        let table = Memtable()
        var random = TestRandom(seed: ascending ? 5 : 6)
        var model: [Key: Entry] = [:]
        for i in 0..<40_000 {
            let number = ascending ? UInt64(i) : random.next() % 30_000
            let key = Key(Array("k\(number)".utf8))
            // Every fourth key shares its token with others to exercise the key tie-break.
            let token = number % 4 == 0 ? Token(rawValue: ascending ? UInt64(i / 64) : number % 97) : key.token
            let tokenForKey = model[key]?.token ?? token
            let record = Record.value(Value([UInt8(truncatingIfNeeded: i)]), at: ts(UInt64(i)))
            table.put(Entry(token: tokenForKey, key: key, record: record))
            model[key] = Entry(token: tokenForKey, key: key, record: record)
        }
        let expected = sortedEntries(model.values)
        var iterator = table.makeIterator()
        #expect(try drain(&iterator) == expected)
        #expect(table.count == expected.count)
        for entry in expected.prefix(2_000) { #expect(table.get(key: entry.key, token: entry.token) == entry.record) }
        for i in stride(from: 0, to: expected.count, by: 331) {
            var seeking = table.makeIterator()
            seeking.seek(token: expected[i].token, key: expected[i].key)
            #expect(try seeking.next() == expected[i])
        }
    }

    /// Inserts between `next()` calls (the same actor, across an await) neither skip nor
    /// repeat keys: the iterator sees every key that was present throughout, once, in order.
    @Test func iteratorSurvivesInterleavedInserts() throws {
        let table = Memtable()
        for i in stride(from: 0, to: 4_000, by: 2) { table.put(Entry(key: Key("k\(i)"), record: .value(Value("v"), at: ts(1)))) }
        var iterator = table.makeIterator()
        var seen: [Entry] = []
        var i = 1
        while let entry = try iterator.next() {
            seen.append(entry)
            // Insert new odd keys, which land all over the tree and split leaves.
            for _ in 0..<3 where i < 4_000 {
                table.put(Entry(key: Key("k\(i)"), record: .value(Value("v"), at: ts(1))))
                i += 2
            }
        }
        for j in 1..<seen.count { #expect(Entry.precedes((seen[j - 1].token, seen[j - 1].key), (seen[j].token, seen[j].key))) }
        let seenKeys = Set(seen.map(\.key))
        #expect(seenKeys.count == seen.count)
        for j in stride(from: 0, to: 4_000, by: 2) { #expect(seenKeys.contains(Key("k\(j)"))) }
    }

    /// A quick cost figure (debug builds are ~10× slower than release); bounded in count.
    @Test func insertAndGetCost() {
        let count = 200_000
        let table = Memtable()
        var random = TestRandom(seed: 3)
        let keys = (0..<count).map { _ in Key(random.bytes(16)) }
        let tokens = keys.map(\.token)
        let value = Value(random.bytes(100))
        let clock = ContinuousClock()
        let insert = clock.measure {
            for i in 0..<count { table.put(key: keys[i], token: tokens[i], record: .value(value, at: ts(UInt64(i)))) }
        }
        var found = 0
        let lookup = clock.measure {
            for i in 0..<count where table.get(key: keys[i], token: tokens[i]) != nil { found += 1 }
        }
        #expect(found == count)
        let perInsert = Double(insert.components.attoseconds) / 1e9 / Double(count) + Double(insert.components.seconds) * 1e9 / Double(count)
        let perGet = Double(lookup.components.attoseconds) / 1e9 / Double(count) + Double(lookup.components.seconds) * 1e9 / Double(count)
        print("memtable: \(count) entries, insert \(Int(perInsert)) ns/op, get \(Int(perGet)) ns/op")
    }
}
