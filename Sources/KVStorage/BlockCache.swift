import Synchronization

/// Hit/miss counters and occupancy of a `BlockCache`.
public struct BlockCacheStatistics: Sendable, Equatable {
    /// Lookups answered from the cache.
    public var hits: UInt64
    /// Lookups that had to read the block from disk.
    public var misses: UInt64
    /// Blocks dropped to stay within the capacity.
    public var evictions: UInt64
    /// Bytes of cached blocks (the figure bounded by the capacity).
    public var bytes: Int
    /// Blocks currently cached.
    public var blockCount: Int
}

/// A least-recently-used cache of verified SSTable data blocks, bounded by bytes,
/// shared by every `SSTableReader` of a shard (or a node). Thread-safe: one mutex
/// around a hash map and an intrusive doubly linked list, so a lookup or insert is
/// O(1) and holds the lock for well under a microsecond. A block larger than the
/// whole capacity is not cached.
public final class BlockCache: Sendable {
    struct CacheKey: Hashable {
        var table: UInt64
        var offset: UInt64
    }

    struct Slot {
        var key: CacheKey
        var block: Block?
        var previous: Int
        var next: Int
    }

    struct State {
        var slots: [Slot] = []
        var index: [CacheKey: Int] = [:]
        var freeSlots: [Int] = []
        /// Most recently used slot, and least recently used; -1 when empty.
        var head = -1
        var tail = -1
        var bytes = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var evictions: UInt64 = 0

        mutating func unlink(_ i: Int) {
            let (p, n) = (slots[i].previous, slots[i].next)
            if p >= 0 { slots[p].next = n } else { head = n }
            if n >= 0 { slots[n].previous = p } else { tail = p }
        }

        mutating func pushFront(_ i: Int) {
            slots[i].previous = -1
            slots[i].next = head
            if head >= 0 { slots[head].previous = i }
            head = i
            if tail < 0 { tail = i }
        }

        mutating func remove(_ i: Int) {
            unlink(i)
            if let block = slots[i].block { bytes -= block.cost }
            index[slots[i].key] = nil
            slots[i].block = nil
            freeSlots.append(i)
        }
    }

    /// The byte bound on cached blocks.
    public let capacityBytes: Int
    private let state = Mutex(State())

    /// A cache holding at most `capacityBytes` of blocks (`TableSettings.blockCacheBytes`).
    public init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
    }

    /// Current counters.
    public var statistics: BlockCacheStatistics {
        state.withLock { s in
            BlockCacheStatistics(
                hits: s.hits, misses: s.misses, evictions: s.evictions, bytes: s.bytes, blockCount: s.index.count)
        }
    }

    /// Drops every block of one table (call when the table is deleted).
    public func evictAll(tableID: UInt64) {
        state.withLock { s in
            for (key, slot) in s.index where key.table == tableID { s.remove(slot) }
        }
    }

    /// The cached block, marking it most recently used; counts a hit or a miss.
    func lookup(table: UInt64, offset: UInt64) -> Block? {
        state.withLock { s in
            guard let i = s.index[CacheKey(table: table, offset: offset)] else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            s.unlink(i)
            s.pushFront(i)
            return s.slots[i].block
        }
    }

    /// Caches `block`, evicting least recently used blocks until it fits.
    func insert(table: UInt64, offset: UInt64, block: Block) {
        let cost = block.cost
        guard cost <= capacityBytes else { return }
        let key = CacheKey(table: table, offset: offset)
        state.withLock { s in
            if let existing = s.index[key] { s.remove(existing) }
            while s.bytes + cost > capacityBytes, s.tail >= 0 {
                s.remove(s.tail)
                s.evictions += 1
            }
            let slot: Int
            if let free = s.freeSlots.popLast() {
                slot = free
                s.slots[slot] = Slot(key: key, block: block, previous: -1, next: -1)
            } else {
                slot = s.slots.count
                s.slots.append(Slot(key: key, block: block, previous: -1, next: -1))
            }
            s.index[key] = slot
            s.pushFront(slot)
            s.bytes += cost
        }
    }
}
