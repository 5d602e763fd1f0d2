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
/// block number to cache slot, so a lookup is one array read, not a hash of (table,
/// offset). A hit only sets the slot's reference bit; it does not relink a list (an LRU
/// hit wrote two neighbouring slots, two more cache misses on a random read). Eviction
/// sweeps a hand over the slots: a referenced block loses its bit and stays one more
/// round, an unreferenced one goes. New blocks enter unreferenced, so a block read once
/// (a cold lookup) leaves before blocks read again.
///
/// Thread-safe: one mutex around the slots and every table's slot array (a lookup or
/// insert holds it well under a microsecond). A block larger than the whole capacity is
/// not cached.
public final class BlockCache: Sendable {
    /// One table's blocks in the cache: the slot holding block `i`, or -1. Created by
    /// `register`, kept by the reader. Unchecked Sendable: `slotOfBlock` is read and
    /// written only under the owning cache's lock.
    final class Table: @unchecked Sendable {
        /// The reader's `cacheID`.
        let id: UInt64
        fileprivate var slotOfBlock: [Int32]

        fileprivate init(id: UInt64, blockCount: Int) {
            self.id = id
            slotOfBlock = [Int32](repeating: -1, count: blockCount)
        }
    }

    struct Slot {
        /// Nil when the slot is free.
        var table: Table?
        var blockIndex: Int32
        var referenced: Bool
        var block: Block?
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
            table.slotOfBlock[Int(slots[i].blockIndex)] = -1
            if let block = slots[i].block { bytes -= block.cost }
            slots[i] = Slot(table: nil, blockIndex: -1, referenced: false, block: nil)
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
                guard slots[i].table != nil else { continue }
                if slots[i].referenced {
                    slots[i].referenced = false
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
            let slot = Int(table.slotOfBlock[blockIndex])
            guard slot >= 0 else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            s.slots[slot].referenced = true
            return s.slots[slot].block
        }
    }

    /// Caches `block` as block `blockIndex` of `table`, evicting until it fits.
    func insert(_ table: Table, block blockIndex: Int, _ block: Block) {
        let cost = block.cost
        guard cost <= capacityBytes else { return }
        state.withLock { s in
            let existing = Int(table.slotOfBlock[blockIndex])
            if existing >= 0 { s.remove(existing) }
            while s.bytes + cost > capacityBytes, s.blockCount > 0 { s.evictOne() }
            let entry = Slot(table: table, blockIndex: Int32(blockIndex), referenced: false, block: block)
            let slot: Int
            if let free = s.freeSlots.popLast() {
                slot = free
                s.slots[slot] = entry
            } else {
                slot = s.slots.count
                s.slots.append(entry)
            }
            table.slotOfBlock[blockIndex] = Int32(slot)
            s.bytes += cost
            s.blockCount += 1
        }
    }
}
