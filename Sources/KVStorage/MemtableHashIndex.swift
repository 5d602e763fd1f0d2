/// The memtable's point-read index: an open-addressing hash table from a key's token to
/// its entry in the record arena. A read finds its key in one or two cache misses
/// (the slot, then the entry's key bytes) where the B+tree descent takes about eight
/// once the memtable outgrows the CPU caches; a write checks it before descending, so
/// overwriting a key skips the tree.
///
/// Slots are 16 bytes (token, entry pointer; nil = empty), probed linearly from the
/// token's low bits (tokens are already uniform hashes). The table doubles at 3/4 load;
/// entries are never removed (a memtable only grows). Two keys may share a token: a
/// lookup compares keys through `matches` and probes on.
///
/// Not thread-safe: the memtable's one-writer rule covers it.
struct MemtableHashIndex: ~Copyable {
    private struct Slot {
        var token: UInt64
        var entry: UnsafeMutableRawPointer?
    }

    private var slots: UnsafeMutablePointer<Slot>
    private var mask: Int
    /// Entries held.
    private(set) var count = 0

    /// An empty index of `capacity` slots (rounded up to a power of two, at least 16).
    /// Small by default: its bytes count towards the memtable's size, and a small memtable
    /// (tests use 8 KiB) must not start out full.
    init(capacity: Int = 64) {
        var size = 16
        while size < capacity { size <<= 1 }
        mask = size - 1
        // unsafe: `size` slots, all initialised empty here, freed in deinit.
        slots = .allocate(capacity: size)
        slots.initialize(repeating: Slot(token: 0, entry: nil), count: size)
    }

    deinit { slots.deallocate() }

    /// Bytes the table takes.
    var bytes: Int { (mask + 1) * MemoryLayout<Slot>.stride }

    /// The entry of the key with `token` for which `matches` holds, or nil.
    @inline(__always)
    func find(_ token: UInt64, where matches: (UnsafeMutableRawPointer) -> Bool) -> UnsafeMutableRawPointer? {
        var i = Int(truncatingIfNeeded: token) & mask
        // unsafe: i stays in 0...mask; the load factor stays below 1, so an empty slot ends the probe.
        while let entry = slots[i].entry {
            if slots[i].token == token && matches(entry) { return entry }
            i = (i &+ 1) & mask
        }
        return nil
    }

    /// Adds the entry of a key not yet in the index.
    mutating func insert(_ token: UInt64, entry: UnsafeMutableRawPointer) {
        if (count + 1) * 4 > (mask + 1) * 3 { grow() }
        Self.place(token, entry, in: slots, mask: mask)
        count += 1
    }

    private static func place(_ token: UInt64, _ entry: UnsafeMutableRawPointer, in slots: UnsafeMutablePointer<Slot>, mask: Int) {
        var i = Int(truncatingIfNeeded: token) & mask
        // unsafe: as in `find`; the caller keeps a free slot.
        while slots[i].entry != nil { i = (i &+ 1) & mask }
        slots[i] = Slot(token: token, entry: entry)
    }

    /// Doubles the table and re-places every entry: O(count), once per doubling.
    private mutating func grow() {
        let oldSize = mask + 1
        let newMask = oldSize * 2 - 1
        // unsafe: a fresh table initialised empty; the old one is read in full, then freed.
        let grown = UnsafeMutablePointer<Slot>.allocate(capacity: newMask + 1)
        grown.initialize(repeating: Slot(token: 0, entry: nil), count: newMask + 1)
        for i in 0..<oldSize {
            if let entry = slots[i].entry { Self.place(slots[i].token, entry, in: grown, mask: newMask) }
        }
        slots.deallocate()
        slots = grown
        mask = newMask
    }
}
