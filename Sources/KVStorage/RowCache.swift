import KVCore

/// A memory-bounded cache of the newest record of recently read keys, consulted
/// before the memtables and SSTables. Owned by the engine (no locking).
///
/// Eviction is CLOCK (second chance): each hit sets a bit; the hand clears bits
/// and evicts the first entry found without one. A write to a cached key updates
/// the entry in place, so the cache never serves a superseded version. Cost: one
/// dictionary lookup per read; about 64 bytes of bookkeeping per entry beyond the
/// key and value.
struct RowCache {
    private struct Slot {
        var key: Key
        var record: Record
        var referenced: Bool
        var bytes: Int
    }

    let capacityBytes: Int
    private var index: [Key: Int] = [:]
    private var slots: [Slot] = []
    private var hand = 0
    private(set) var bytes = 0
    private(set) var hits: UInt64 = 0
    private(set) var misses: UInt64 = 0

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    var isEnabled: Bool { capacityBytes > 0 }

    private static func cost(_ key: Key, _ record: Record) -> Int {
        key.bytes.count + record.valueByteCount + 64
    }

    /// The cached newest record of `key`; counts a hit or a miss.
    mutating func lookup(_ key: Key) -> Record? {
        guard let i = index[key] else {
            misses += 1
            return nil
        }
        hits += 1
        slots[i].referenced = true
        return slots[i].record
    }

    /// Caches `record` as the newest version of `key` (after a read that missed).
    mutating func insert(_ key: Key, _ record: Record) {
        guard isEnabled else { return }
        let cost = Self.cost(key, record)
        guard cost <= capacityBytes / 4 else { return }
        if let i = index[key] {
            bytes += cost - slots[i].bytes
            slots[i].record = record
            slots[i].bytes = cost
            return
        }
        while bytes + cost > capacityBytes && !slots.isEmpty { evictOne() }
        index[key] = slots.count
        slots.append(Slot(key: key, record: record, referenced: false, bytes: cost))
        bytes += cost
    }

    /// Applies a write: a cached key keeps whichever version supersedes.
    mutating func update(_ key: Key, _ record: Record) {
        guard let i = index[key] else { return }
        let newest = Record.newest(slots[i].record, record)
        bytes += Self.cost(key, newest) - slots[i].bytes
        slots[i].bytes = Self.cost(key, newest)
        slots[i].record = newest
    }

    /// Drops every entry (after a table is quarantined its data may be gone).
    mutating func removeAll() {
        index = [:]
        slots = []
        hand = 0
        bytes = 0
    }

    private mutating func evictOne() {
        while true {
            if hand >= slots.count { hand = 0 }
            if slots[hand].referenced {
                slots[hand].referenced = false
                hand += 1
                continue
            }
            let victim = slots[hand]
            index[victim.key] = nil
            bytes -= victim.bytes
            let last = slots.count - 1
            if hand != last {
                slots[hand] = slots[last]
                index[slots[hand].key] = hand
            }
            slots.removeLast()
            return
        }
    }
}
