import KVCore
import Testing
@testable import KVStorage

@Suite struct MemtableChunkPoolTests {
    /// Fills a memtable of `pool` with about `bytes` of records and returns it.
    private func filledMemtable(_ pool: MemtableChunkPool, bytes: Int) -> Memtable {
        let table = Memtable(chunkPool: pool)
        var i = 0
        while table.approximateBytes < bytes {
            let key = Key("key-\(i)")
            table.put(key: key, token: key.token, record: .value(Value([UInt8](repeating: 7, count: 200)), at: Timestamp(rawValue: UInt64(i + 1))))
            i += 1
        }
        return table
    }

    @Test func aFlushedMemtablesChunksServeTheNextOne() {
        let pool = MemtableChunkPool(limit: 64)
        var table: Memtable? = filledMemtable(pool, bytes: 5 * MemtableChunkPool.chunkBytes)
        #expect(pool.count == 0, "fresh chunks while the pool is empty")
        table = nil
        let returned = pool.count
        #expect(returned >= 5, "a destroyed memtable gives its chunks back")
        // The next memtable reuses them (its bytes are not zeroed: reads must still be right).
        let next = filledMemtable(pool, bytes: 2 * MemtableChunkPool.chunkBytes)
        #expect(pool.count < returned)
        let key = Key("key-3")
        #expect(next.get(key: key, token: key.token)?.value == Value([UInt8](repeating: 7, count: 200)))
        #expect(next.get(key: Key("absent"), token: Key("absent").token) == nil)
        _ = table
    }

    @Test func thePoolKeepsAtMostItsLimit() {
        let pool = MemtableChunkPool(limit: 2)
        var table: Memtable? = filledMemtable(pool, bytes: 6 * MemtableChunkPool.chunkBytes)
        table = nil
        #expect(pool.count == 2)
        _ = table
    }

    @Test func prefaultFillsThePoolOnce() {
        let pool = MemtableChunkPool(limit: 8)
        pool.prefault(bytes: 5 * MemtableChunkPool.chunkBytes - 1)
        #expect(pool.count == 5)
        pool.prefault(bytes: 8 * MemtableChunkPool.chunkBytes)
        #expect(pool.count == 5, "only the first call reserves memory")
        let table = Memtable(chunkPool: pool)
        let key = Key("k")
        table.put(key: key, token: key.token, record: .value(Value("v"), at: Timestamp(rawValue: 1)))
        #expect(pool.count == 3, "the memtable's two arenas took prefaulted chunks")
    }
}
