import KVCore
import PropertyBased
import Testing
@testable import KVStorage

@Suite struct SSTableTests {
    /// A mix of shapes: empty values, tombstones, expiries, binary keys.
    func sampleEntries(count: Int, seed: UInt64 = 1) -> [Entry] {
        var random = TestRandom(seed: seed)
        var entries: [Entry] = []
        for i in 0..<count {
            // "/" ends the number, so no two keys collide ("key-43" + "3" would equal "key-433").
            let key = Key(Array("key-\(i)/".utf8) + random.bytes(Int(random.next() % 8)))
            let time = ts(1_000 + UInt64(i))
            let record: Record
            switch i % 5 {
            case 0: record = .tombstone(at: time)
            case 1: record = .value(Value([]), at: time)
            case 2: record = .value(Value(random.bytes(Int(random.next() % 300))), at: time, expiresAtMillis: 5_000 + UInt64(i))
            default: record = .value(Value(random.bytes(Int(random.next() % 200))), at: time)
            }
            entries.append(Entry(key: key, record: record))
        }
        return sortedEntries(entries)
    }

    @Test func roundTripsEntriesAndMetadata() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sampleEntries(count: 3_000)
        let path = dir.file("1.sst")
        let written = try writeTable(entries, to: path, createdAt: 77)
        let reader = try SSTableReader.open(path: path, cache: BlockCache(capacityBytes: 1 << 20))
        #expect(reader.metadata == written)
        #expect(written.entryCount == 3_000)
        #expect(written.tombstoneCount == 600)
        #expect(written.expiringCount == 600)
        #expect(written.minToken == entries.first!.token && written.maxToken == entries.last!.token)
        #expect(written.minTimestamp == ts(1_000) && written.maxTimestamp == ts(3_999))
        #expect(written.maxExpiryMillis == 5_000 + 2_997)
        #expect(written.createdAtMillis == 77)
        #expect(written.blockCount > 10)
        var iterator = try reader.makeIterator()
        #expect(try drain(&iterator) == entries)
        for entry in entries { #expect(try reader.get(key: entry.key, token: entry.token) == entry.record) }
        for i in 0..<500 {
            let missing = Key("missing-\(i)")
            #expect(try reader.get(key: missing, token: missing.token) == nil)
        }
    }

    /// Keys that share a token sit in (token, key) order, and a run of them can span many
    /// blocks: lookups must tie-break on the key both in the index and inside a block.
    @Test func keysSharingATokenAcrossBlocks() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var entries: [Entry] = []
        for i in 0..<3_000 {
            // Three tokens, a thousand keys each; odd numbers are left out to probe for.
            let token = Token(rawValue: UInt64(i % 3) << 62 | 7)
            let key = Key(Array("k\((i / 3) * 2)".utf8))
            entries.append(Entry(token: token, key: key, record: .value(Value(Array(repeating: UInt8(i % 251), count: 40)), at: ts(1))))
        }
        entries = sortedEntries(entries)
        let path = dir.file("ties.sst")
        let written = try writeTable(entries, to: path)
        #expect(written.blockCount > 20, "each token's run spans several blocks")
        let reader = try SSTableReader.open(path: path, cache: BlockCache(capacityBytes: 1 << 20))
        for entry in entries { #expect(try reader.get(key: entry.key, token: entry.token) == entry.record) }
        for i in 0..<3_000 {
            let token = Token(rawValue: UInt64(i % 3) << 62 | 7)
            #expect(try reader.get(key: Key(Array("k\((i / 3) * 2 + 1)".utf8)), token: token) == nil)
        }
        // Neighbouring tokens of a run find nothing.
        #expect(try reader.get(key: Key("k0"), token: Token(rawValue: 6)) == nil)
        #expect(try reader.get(key: Key("k0"), token: Token(rawValue: 8)) == nil)
    }

    @Test func largeValuesAndKeys() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var random = TestRandom(seed: 9)
        let entries = sortedEntries(
            (0..<6).map { i in
                Entry(key: Key(random.bytes(1024)), record: .value(Value(random.bytes(i.isMultiple(of: 2) ? 1 << 20 : 10)), at: ts(5)))
            })
        let path = dir.file("big.sst")
        try writeTable(entries, to: path)
        let reader = try SSTableReader.open(path: path, cache: BlockCache(capacityBytes: 8 << 20))
        for entry in entries { #expect(try reader.get(key: entry.key, token: entry.token) == entry.record) }
        var iterator = try reader.makeIterator()
        #expect(try drain(&iterator) == entries)
    }

    @Test func emptyTable() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("empty.sst")
        try writeTable([], to: path)
        let reader = try SSTableReader.open(path: path, cache: nil)
        #expect(reader.metadata.entryCount == 0)
        #expect(try reader.get(key: Key("a"), token: Key("a").token) == nil)
        var iterator = try reader.makeIterator()
        #expect(try drain(&iterator).isEmpty)
    }

    @Test func seekAndTokenRanges() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sampleEntries(count: 2_000, seed: 4)
        let path = dir.file("r.sst")
        try writeTable(entries, to: path, settings: TableSettings(blockSizeBytes: 512))
        let reader = try SSTableReader.open(path: path, cache: BlockCache(capacityBytes: 1 << 20))
        var random = TestRandom(seed: 5)
        for _ in 0..<50 {
            let a = Token(rawValue: random.next())
            let b = Token(rawValue: random.next())
            let range = min(a, b)...max(a, b)
            var iterator = try reader.makeIterator(tokens: range)
            #expect(try drain(&iterator) == entries.filter { range.contains($0.token) })
        }
        // Seek to an exact entry, and just past it.
        for i in stride(from: 0, to: entries.count, by: 97) {
            var iterator = try reader.makeIterator()
            try iterator.seek(token: entries[i].token, key: entries[i].key)
            #expect(try iterator.next() == entries[i])
            try iterator.seek(token: entries[i].token, key: Key(entries[i].key.bytes + [0]))
            #expect(try iterator.next() == (i + 1 < entries.count ? entries[i + 1] : nil))
        }
    }

    @Test func rejectsOutOfOrderAppends() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sampleEntries(count: 3)
        let writer = try SSTableWriter(path: dir.file("x.sst"), createdAtMillis: 0)
        try writer.append(entries[1])
        #expect(throws: KVError.self) { try writer.append(entries[0]) }
        #expect(throws: KVError.self) { try writer.append(entries[1]) }
        writer.abandon()
    }

    @Test(arguments: [BloomFilter.Layout.blocked, .standard])
    func bloomFilterFalsePositiveRateIsUnderTwoPercent(layout: BloomFilter.Layout) {
        var random = TestRandom(seed: 11)
        let present = (0..<100_000).map { _ in Token(rawValue: random.next()) }
        let filter = BloomFilter(tokens: present, bitsPerKey: 10, layout: layout)
        #expect(present.allSatisfy { filter.mayContain($0) }, "no false negatives")
        var falsePositives = 0
        let probes = 100_000
        for _ in 0..<probes where filter.mayContain(Token(rawValue: random.next())) { falsePositives += 1 }
        let rate = Double(falsePositives) / Double(probes)
        print("bloom \(layout): 10 bits/key, k=\(filter.hashCount), false-positive rate \(rate)")
        #expect(rate < 0.02)
        // Keys hashed for real (tokens of short similar keys) behave the same.
        let keys = (0..<100_000).map { Key("user:\($0)").token }
        let keyFilter = BloomFilter(tokens: keys, bitsPerKey: 10, layout: layout)
        let keyFalse = (100_000..<200_000).filter { keyFilter.mayContain(Key("user:\($0)").token) }.count
        #expect(Double(keyFalse) / 100_000 < 0.02)
        // A table of one vnode range: every token shares its high 10 bits.
        let narrow = (0..<50_000).map { _ in Token(rawValue: 0x2A5 << 54 | random.next() >> 10) }
        let narrowFilter = BloomFilter(tokens: narrow, bitsPerKey: 10, layout: layout)
        #expect(narrow.allSatisfy { narrowFilter.mayContain($0) })
        let narrowFalse = (0..<50_000).count { _ in narrowFilter.mayContain(Token(rawValue: 0x2A5 << 54 | random.next() >> 10)) }
        #expect(Double(narrowFalse) / 50_000 < 0.02)
    }

    /// Both layouts survive serialisation (the header tells them apart), so tables written
    /// before the blocked layout still read; bad headers and torn lines are refused.
    @Test func bloomFilterSerialisationKeepsTheLayout() throws {
        var random = TestRandom(seed: 12)
        let tokens = (0..<5_000).map { _ in Token(rawValue: random.next()) }
        for layout in [BloomFilter.Layout.blocked, .standard] {
            let filter = BloomFilter(tokens: tokens, bitsPerKey: 10, layout: layout)
            let parsed = try #require(BloomFilter(serialized: filter.serialized))
            #expect(parsed == filter)
            #expect(tokens.allSatisfy { parsed.mayContain($0) })
        }
        let blocked = BloomFilter(tokens: tokens, bitsPerKey: 10).serialized
        #expect(blocked.count - 1 == (5_000 * 10 + 511) / 512 * 64)
        #expect(BloomFilter(serialized: Array(blocked.dropLast())) == nil, "a torn line")
        #expect(BloomFilter(serialized: [31, 0, 0]) == nil, "more than 30 probes")
        #expect(BloomFilter(serialized: []) == nil)
        let empty = try #require(BloomFilter(serialized: BloomFilter(tokens: tokens, bitsPerKey: 0).serialized))
        #expect(empty.mayContain(Token(rawValue: 1)))
    }

    @Test func blockCacheServesRepeatReadsAndEvictsByBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sampleEntries(count: 2_000, seed: 8)
        let path = dir.file("c.sst")
        try writeTable(entries, to: path)
        let cache = BlockCache(capacityBytes: 64 << 10)
        let reader = try SSTableReader.open(path: path, cache: cache)
        _ = try reader.get(key: entries[0].key, token: entries[0].token)
        _ = try reader.get(key: entries[0].key, token: entries[0].token)
        #expect(cache.statistics.hits == 1 && cache.statistics.misses == 1)
        for entry in entries { _ = try reader.get(key: entry.key, token: entry.token) }
        let stats = cache.statistics
        #expect(stats.bytes <= 64 << 10)
        #expect(stats.evictions > 0)
        #expect(stats.blockCount < Int(reader.metadata.blockCount))
        cache.evictAll(tableID: reader.cacheID)
        #expect(cache.statistics.bytes == 0 && cache.statistics.blockCount == 0)
    }

    /// CLOCK eviction: a block read again since the hand last passed keeps its place
    /// for one more sweep, while one read once goes first.
    @Test func blockCacheKeepsABlockReadAgainOverOnesReadOnce() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("clock.sst")
        try writeTable(sampleEntries(count: 2_000, seed: 3), to: path, settings: TableSettings(blockSizeBytes: 512))
        // Size the cache to exactly blocks 0…3.
        let probe = try SSTableReader.open(path: path, cache: nil)
        let costs = try (0..<5).map { try probe.block(at: $0, fillCache: false).cost }
        let cache = BlockCache(capacityBytes: costs[0..<4].reduce(0, +))
        let reader = try SSTableReader.open(path: path, cache: cache)
        let table = try #require(reader.cacheTable)
        _ = try reader.block(at: 0, fillCache: true)
        _ = try reader.block(at: 0, fillCache: true)  // a hit: block 0 is now referenced
        for i in 1...3 { _ = try reader.block(at: i, fillCache: true) }
        #expect(cache.statistics.blockCount == 4 && cache.statistics.evictions == 0)
        _ = try reader.block(at: 4, fillCache: true)  // full: the sweep spares block 0, evicts block 1
        #expect(cache.statistics.evictions >= 1)
        #expect(cache.lookup(table, block: 0) != nil, "read twice: kept")
        #expect(cache.lookup(table, block: 1) == nil, "read once: evicted first")
        #expect(cache.lookup(table, block: 4) != nil)
        #expect(cache.statistics.bytes <= cache.capacityBytes)
    }

    /// Random tables (sizes, block sizes, shapes) read back exactly, by scan, get and seek.
    @Test func randomTablesRoundTrip() async {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let shape = zip(Gen.int(in: 0...600), Gen.int(in: 64...2048), Gen.int(in: 1...1_000_000))
        await propertyCheck(count: 25, input: shape) { count, blockSize, seed in
            let entries = sampleEntries(count: count, seed: UInt64(seed))
            let path = dir.file("p-\(seed)-\(count).sst")
            do {
                try writeTable(entries, to: path, settings: TableSettings(blockSizeBytes: blockSize))
                let reader = try SSTableReader.open(path: path, cache: BlockCache(capacityBytes: 32 << 10))
                var iterator = try reader.makeIterator()
                #expect(try drain(&iterator) == entries)
                for entry in entries { #expect(try reader.get(key: entry.key, token: entry.token) == entry.record) }
                if let middle = entries.dropFirst(entries.count / 2).first {
                    var seeking = try reader.makeIterator()
                    try seeking.seek(token: middle.token, key: middle.key)
                    #expect(try drain(&seeking) == Array(entries[(entries.count / 2)...]))
                }
            } catch {
                Issue.record("round trip failed: \(error)")
            }
        }
    }

    /// One reader and one cache shared by several tasks at once (they are Sendable).
    @Test func concurrentReadersShareTheCache() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let entries = sampleEntries(count: 4_000, seed: 12)
        let path = dir.file("shared.sst")
        try writeTable(entries, to: path)
        let cache = BlockCache(capacityBytes: 48 << 10)
        let reader = try SSTableReader.open(path: path, cache: cache)
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask { @Sendable in
                    var wrong = 0
                    for i in stride(from: worker, to: entries.count, by: 3) {
                        if (try? reader.get(key: entries[i].key, token: entries[i].token)) != entries[i].record { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        let stats = cache.statistics
        #expect(stats.hits > 0 && stats.misses > 0 && stats.bytes <= 48 << 10)
    }
}
