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

/// A cache of verified SSTable data blocks, bounded by bytes, shared by every
/// `SSTableReader` of a shard (or a node), with CLOCK (second-chance) eviction.
///
/// Each open table registers once (`register`) and gets a `Table`: a direct array from
/// block number to the cached block, so a hit is one array read and one bit set in the
/// block's own header (a line the read touches next anyway), not a hash of (table,
/// offset) nor a detour through a slot (each of which was one more cache miss on a
/// random read; an LRU hit also relinked two neighbours). Eviction sweeps a hand over
/// the slots, which say which table's block each one is: a referenced block loses its
/// bit and stays one more round, an unreferenced one goes. New blocks enter
/// unreferenced, so a block read once (a cold lookup) leaves before blocks read again.
///
/// Thread-safe: one mutex around the slots, every table's block array and the blocks'
/// reference bits (a lookup or insert holds it well under a microsecond). A block
/// larger than the whole capacity is not cached.
public final class BlockCache: Sendable {
    /// One table's blocks in the cache: block `i`, or nil. Created by `register`, kept by
    /// the reader. Unchecked Sendable: `blocks` is read and written only under the owning
    /// cache's lock.
    final class Table: @unchecked Sendable {
        /// The reader's `cacheID`.
        let id: UInt64
        fileprivate var blocks: [Block?]

        fileprivate init(id: UInt64, blockCount: Int) {
            self.id = id
            blocks = [Block?](repeating: nil, count: blockCount)
        }
    }

    /// Which table's block a slot holds (`table` nil when the slot is free).
    struct Slot {
        var table: Table?
        var blockIndex: Int32
    }

    struct State {
        var slots: [Slot] = []
        var freeSlots: [Int] = []
        /// The next slot the eviction sweep looks at.
        var hand = 0
        var blockCount = 0
        var bytes = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var evictions: UInt64 = 0

        mutating func remove(_ i: Int) {
            guard let table = slots[i].table else { return }
            let blockIndex = Int(slots[i].blockIndex)
            if let block = table.blocks[blockIndex] { bytes -= block.cost }
            table.blocks[blockIndex] = nil
            slots[i] = Slot(table: nil, blockIndex: -1)
            freeSlots.append(i)
            blockCount -= 1
        }

        /// Evicts the first unreferenced block at or after the hand, clearing the
        /// reference bits it passes (at most two sweeps). Requires a cached block.
        mutating func evictOne() {
            while true {
                if hand >= slots.count { hand = 0 }
                let i = hand
                hand += 1
                guard let table = slots[i].table, let block = table.blocks[Int(slots[i].blockIndex)] else { continue }
                if block.header.referenced {
                    block.header.referenced = false
                } else {
                    remove(i)
                    evictions += 1
                    return
                }
            }
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
                hits: s.hits, misses: s.misses, evictions: s.evictions, bytes: s.bytes, blockCount: s.blockCount)
        }
    }

    /// A place in the cache for a table of `blockCount` data blocks.
    func register(tableID: UInt64, blockCount: Int) -> Table {
        Table(id: tableID, blockCount: blockCount)
    }

    /// Drops every block of one table (call when the table is deleted). Cost: one pass
    /// over the slots.
    public func evictAll(tableID: UInt64) {
        state.withLock { s in
            for i in s.slots.indices where s.slots[i].table?.id == tableID { s.remove(i) }
        }
    }

    /// Block `blockIndex` of `table` if cached (marking it referenced); counts a hit or a miss.
    func lookup(_ table: Table, block blockIndex: Int) -> Block? {
        state.withLock { s in
            guard let block = table.blocks[blockIndex] else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            block.header.referenced = true
            return block
        }
    }

    /// Caches `block` as block `blockIndex` of `table`, evicting until it fits. A block
    /// already cached (two readers missed at once) stays; the two are the same bytes.
    func insert(_ table: Table, block blockIndex: Int, _ block: Block) {
        let cost = block.cost
        guard cost <= capacityBytes else { return }
        state.withLock { s in
            guard table.blocks[blockIndex] == nil else { return }
            while s.bytes + cost > capacityBytes, s.blockCount > 0 { s.evictOne() }
            let entry = Slot(table: table, blockIndex: Int32(blockIndex))
            let slot: Int
            if let free = s.freeSlots.popLast() {
                slot = free
                s.slots[slot] = entry
            } else {
                slot = s.slots.count
                s.slots.append(entry)
            }
            block.header.referenced = false
            table.blocks[blockIndex] = block
            s.bytes += cost
            s.blockCount += 1
        }
    }
}
