#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// The in-memory write buffer of a shard: every recent write, sorted by
/// `(token, key)`, one visible version per key (the newest by `Record.supersedes`).
///
/// It is a B+tree of fan-out 32 whose nodes live in an arena of 2 MiB huge-page
/// chunks, separate from a second arena holding keys and records, so an insert
/// allocates no Swift object and a search touches ≈ 4 nodes (a handful of cache
/// lines) instead of the ≈ 30 scattered nodes of a skiplist. Node arrays hold the
/// tokens inline, so comparisons read the key bytes only on a token tie. Point reads
/// and overwrites skip the tree: a hash index (`MemtableHashIndex`) maps each token to
/// its entry. Memory is given back only when the memtable is deallocated (after its flush).
///
/// **Threading rule.** One writer: the owning actor calls `put` and may read
/// (`get`, iterators) between its own writes. After `freeze()` the memtable is
/// immutable and any thread may read it concurrently (the hand-over must be a
/// synchronising event such as an actor hop, which Swift concurrency provides).
/// Reading a memtable that is not frozen from another thread while the writer runs
/// is not allowed. Hence `@unchecked Sendable`.
public final class Memtable: @unchecked Sendable {
    // Node layouts (nodes are 64-byte aligned):
    //   leaf:  0 count u32 · 4 kind u32 (1) · 8 next leaf · 16 tokens[32] u64 · 272 entries[32]
    //   inner: 0 count u32 (children) · 4 kind u32 (0) · 8 unused · 16 separator tokens[31] u64
    //          · 272 separator entries[31] · 528 children[32]
    //   Separator i is the smallest (token, key) of child i+1.
    // Entry record (record arena): 0 blob pointer · 8 key length u32 · 12 key bytes.
    // Record blob (record arena): 0 timestamp u64 · 8 expiry u64 · 16 value length u32
    //   · 20 flags u8 (bit 0 tombstone, bit 1 has expiry) · 24 value bytes.
    static let fanout = 32
    static let tokensOffset = 16
    static let entriesOffset = 16 + 8 * fanout
    static let childrenOffset = 16 + 16 * fanout
    static let leafBytes = childrenOffset
    static let innerBytes = childrenOffset + 8 * fanout
    static let blobHeader = 24
    static let maxDepth = 16

    // The mutable state is `@exclusivity(unchecked)`: the one writer never holds an access
    // open across a call that could reach the same property (no callbacks into the
    // memtable), so the runtime's per-access bookkeeping (several calls per put) only
    // costs time.
    @exclusivity(unchecked) private var nodeArena: MemtableArena
    @exclusivity(unchecked) private var recordArena: MemtableArena
    /// Token → entry, for point reads and for writes that overwrite a key.
    @exclusivity(unchecked) private var index = MemtableHashIndex()
    @exclusivity(unchecked) private var root: UnsafeMutableRawPointer
    /// Scratch for the inner nodes and child slots visited by an insert.
    private let pathNodes: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private let pathSlots: UnsafeMutablePointer<Int>
    /// Bumped whenever entries move (a new key); iterators re-seek when it changes.
    @exclusivity(unchecked) private(set) var structureVersion: UInt64 = 0

    /// Number of distinct keys held.
    @exclusivity(unchecked) public private(set) var count = 0
    /// Bytes of nodes, keys and records written into the arenas (including superseded
    /// record versions), plus the hash index: the figure to compare with the flush threshold.
    public var approximateBytes: Int { nodeArena.allocatedBytes + recordArena.allocatedBytes + index.bytes }
    /// Smallest and largest record timestamp ever put (nil when empty). Superseded
    /// versions count too, so the bounds are conservative.
    @exclusivity(unchecked) public private(set) var minTimestamp: Timestamp?
    @exclusivity(unchecked) public private(set) var maxTimestamp: Timestamp?
    /// True after `freeze()`: no more writes, safe to read from any thread.
    @exclusivity(unchecked) public private(set) var isFrozen = false

    /// An empty memtable.
    public convenience init() { self.init(chunkPool: .shared) }

    /// An empty memtable whose arenas draw on (and give back to) `chunkPool`.
    init(chunkPool: MemtableChunkPool) {
        nodeArena = MemtableArena(pool: chunkPool)
        recordArena = MemtableArena(pool: chunkPool)
        root = nodeArena.allocate(Self.leafBytes, alignment: 64)
        // unsafe: the root leaf was just allocated with leafBytes; only its header needs zeroing.
        root.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        root.storeBytes(of: 1, toByteOffset: 4, as: UInt32.self)
        // unsafe: scratch arrays of maxDepth slots, freed in deinit.
        pathNodes = .allocate(capacity: Self.maxDepth)
        pathSlots = .allocate(capacity: Self.maxDepth)
    }

    deinit {
        pathNodes.deallocate()
        pathSlots.deallocate()
    }

    /// Makes the memtable read-only; later `put`s are a programming error (trap).
    public func freeze() { isFrozen = true }

    // MARK: Writing

    /// Inserts `entry`; if the key is present, keeps whichever version supersedes.
    public func put(_ entry: Entry) {
        put(key: entry.key, token: entry.token, record: entry.record)
    }

    /// Inserts a version of `key` (whose token is `token`). Cost: one hash-index probe;
    /// an overwrite then copies the record into the arena. A new key also pays a descent
    /// of ≈ log₃₂(n) nodes with binary search on inline tokens, one arena copy of the key,
    /// a shift of at most 31 slots (a split now and then) and an index insert.
    public func put(key: Key, token: Token, record: Record) {
        precondition(!isFrozen, "put on a frozen memtable")
        if minTimestamp.map({ record.timestamp < $0 }) ?? true { minTimestamp = record.timestamp }
        if maxTimestamp.map({ record.timestamp > $0 }) ?? true { maxTimestamp = record.timestamp }
        key.bytes.withUnsafeBytes { probe in
            let t = token.rawValue
            if let existing = index.find(t, where: { Self.compareKey($0, probe) == 0 }) {
                if record.supersedes(storedIn: existing) {
                    existing.storeBytes(of: writeBlob(record), toByteOffset: 0, as: UnsafeMutableRawPointer.self)
                }
                return
            }
            var node = root
            var depth = 0
            while !Self.isLeaf(node) {
                let slot = Self.upperBound(node, Self.count(node) - 1, t, probe)
                precondition(depth < Self.maxDepth, "memtable too deep")
                pathNodes[depth] = node
                pathSlots[depth] = slot
                depth += 1
                node = Self.child(node, slot)
            }
            let n = Self.count(node)
            // The index said the key is new.
            let position = Self.lowerBound(node, n, t, probe)
            let entry = writeEntry(probe, blob: writeBlob(record))
            index.insert(t, entry: entry)
            count += 1
            structureVersion &+= 1
            if n < Self.fanout {
                Self.insert(intoLeaf: node, count: n, at: position, token: t, entry: entry)
                return
            }
            // Split the full leaf: the upper half moves to a new right sibling.
            let right = newNode(leaf: true)
            let half = Self.fanout / 2
            Self.moveSlots(from: node, start: half, count: Self.fanout - half, to: right)
            Self.setCount(node, half)
            Self.setCount(right, Self.fanout - half)
            Self.setNext(right, Self.next(node))
            Self.setNext(node, right)
            if position <= half {
                Self.insert(intoLeaf: node, count: half, at: position, token: t, entry: entry)
            } else {
                Self.insert(intoLeaf: right, count: Self.fanout - half, at: position - half, token: t, entry: entry)
            }
            var separator = (Self.token(right, 0), Self.entry(right, 0))
            var newChild = right
            // Insert the separator into the parents, splitting full ones on the way up.
            while depth > 0 {
                depth -= 1
                let parent = pathNodes[depth]
                let slot = pathSlots[depth]
                let children = Self.count(parent)
                if children < Self.fanout {
                    Self.insert(intoInner: parent, children: children, at: slot, separator: separator, child: newChild)
                    return
                }
                (separator, newChild) = splitInner(parent, at: slot, separator: separator, child: newChild)
            }
            let newRoot = newNode(leaf: false)
            Self.setCount(newRoot, 2)
            Self.setChild(newRoot, 0, root)
            Self.setChild(newRoot, 1, newChild)
            Self.setToken(newRoot, 0, separator.0)
            Self.setEntry(newRoot, 0, separator.1)
            root = newRoot
        }
    }

    // MARK: Reading

    /// The stored version of `key`, or nil. Tombstones and expired values are
    /// returned as they are (the caller decides visibility). Cost: a hash-index probe,
    /// no tree descent.
    public func get(key: Key, token: Token) -> Record? {
        key.bytes.withUnsafeBytes { probe -> Record? in
            index.find(token.rawValue, where: { Self.compareKey($0, probe) == 0 }).map(Self.record(ofEntry:))
        }
    }

    /// An iterator over the entries whose token lies in `tokens`, in order.
    public func makeIterator(tokens: ClosedRange<Token> = Token.min...Token.max) -> MemtableIterator {
        var iterator = MemtableIterator(table: self, upperToken: tokens.upperBound.rawValue)
        iterator.seek(token: tokens.lowerBound, key: Key([]))
        return iterator
    }

    // MARK: Internals shared with the iterator

    /// The leaf and slot of the first entry ≥ (or >) the probe; the slot may equal the
    /// leaf's count when the answer is the start of the next leaf.
    func locate(_ token: UInt64, _ probe: UnsafeRawBufferPointer, strictlyAfter: Bool) -> (UnsafeMutableRawPointer, Int) {
        var node = root
        while !Self.isLeaf(node) {
            node = Self.child(node, Self.upperBound(node, Self.count(node) - 1, token, probe))
        }
        let n = Self.count(node)
        return (node, strictlyAfter ? Self.upperBound(node, n, token, probe) : Self.lowerBound(node, n, token, probe))
    }

    // unsafe (all accessors below): each offset lies inside the node/record layout
    // documented at the top, and slot indices are < fanout by construction.
    @inline(__always) static func count(_ node: UnsafeMutableRawPointer) -> Int {
        Int(node.load(as: UInt32.self))
    }
    @inline(__always) static func setCount(_ node: UnsafeMutableRawPointer, _ value: Int) {
        node.storeBytes(of: UInt32(value), as: UInt32.self)
    }
    @inline(__always) static func isLeaf(_ node: UnsafeMutableRawPointer) -> Bool {
        node.load(fromByteOffset: 4, as: UInt32.self) == 1
    }
    @inline(__always) static func next(_ leaf: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        leaf.load(fromByteOffset: 8, as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func setNext(_ leaf: UnsafeMutableRawPointer, _ value: UnsafeMutableRawPointer?) {
        leaf.storeBytes(of: value, toByteOffset: 8, as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func token(_ node: UnsafeMutableRawPointer, _ i: Int) -> UInt64 {
        node.load(fromByteOffset: tokensOffset + 8 * i, as: UInt64.self)
    }
    @inline(__always) static func setToken(_ node: UnsafeMutableRawPointer, _ i: Int, _ value: UInt64) {
        node.storeBytes(of: value, toByteOffset: tokensOffset + 8 * i, as: UInt64.self)
    }
    @inline(__always) static func entry(_ node: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutableRawPointer {
        node.load(fromByteOffset: entriesOffset + 8 * i, as: UnsafeMutableRawPointer.self)
    }
    @inline(__always) static func setEntry(_ node: UnsafeMutableRawPointer, _ i: Int, _ value: UnsafeMutableRawPointer) {
        node.storeBytes(of: value, toByteOffset: entriesOffset + 8 * i, as: UnsafeMutableRawPointer.self)
    }
    @inline(__always) static func child(_ node: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutableRawPointer {
        node.load(fromByteOffset: childrenOffset + 8 * i, as: UnsafeMutableRawPointer.self)
    }
    @inline(__always) static func setChild(_ node: UnsafeMutableRawPointer, _ i: Int, _ value: UnsafeMutableRawPointer) {
        node.storeBytes(of: value, toByteOffset: childrenOffset + 8 * i, as: UnsafeMutableRawPointer.self)
    }

    /// The key bytes of an entry record.
    @inline(__always) static func keyBytes(_ entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: entry + 12, count: Int(entry.load(fromByteOffset: 8, as: UInt32.self)))
    }

    /// Three-way bytewise comparison of an entry's key with the probe.
    @inline(__always) static func compareKey(_ entry: UnsafeMutableRawPointer, _ probe: UnsafeRawBufferPointer) -> Int {
        compareBytes(keyBytes(entry), probe)
    }

    static func makeEntry(_ leaf: UnsafeMutableRawPointer, _ i: Int) -> Entry {
        let entry = Self.entry(leaf, i)
        return Entry(
            token: Token(rawValue: token(leaf, i)), key: Key(Array(keyBytes(entry))), record: record(ofEntry: entry))
    }

    static func record(ofEntry entry: UnsafeMutableRawPointer) -> Record {
        let blob = entry.load(as: UnsafeMutableRawPointer.self)
        let timestamp = Timestamp(rawValue: blob.load(as: UInt64.self))
        let expiry = blob.load(fromByteOffset: 8, as: UInt64.self)
        let length = Int(blob.load(fromByteOffset: 16, as: UInt32.self))
        let flags = blob.load(fromByteOffset: 20, as: UInt8.self)
        let payload: Record.Payload =
            flags & 1 != 0
            ? .tombstone : .value(Value(Array(UnsafeRawBufferPointer(start: blob + blobHeader, count: length))))
        return Record(payload: payload, timestamp: timestamp, expiresAtMillis: flags & 2 != 0 ? expiry : nil)
    }

    // MARK: Private

    /// First slot in [0, n) whose (token, key) ≥ the probe (n if none).
    @inline(__always)
    private static func lowerBound(_ node: UnsafeMutableRawPointer, _ n: Int, _ t: UInt64, _ probe: UnsafeRawBufferPointer) -> Int {
        var (slot, end) = tokenRange(node, n, t)
        while slot < end, compareKey(entry(node, slot), probe) < 0 { slot += 1 }
        return slot
    }

    /// First slot in [0, n) whose (token, key) > the probe (n if none).
    @inline(__always)
    private static func upperBound(_ node: UnsafeMutableRawPointer, _ n: Int, _ t: UInt64, _ probe: UnsafeRawBufferPointer) -> Int {
        var (slot, end) = tokenRange(node, n, t)
        while slot < end, compareKey(entry(node, slot), probe) <= 0 { slot += 1 }
        return slot
    }

    /// The slots [first, end) of the first n whose token equals `t` (see `equalTokenRange`).
    @inline(__always)
    private static func tokenRange(_ node: UnsafeMutableRawPointer, _ n: Int, _ t: UInt64) -> (Int, Int) {
        // unsafe: n ≤ fanout tokens lie at tokensOffset (node layout above).
        let tokens = UnsafeRawPointer(node + tokensOffset).assumingMemoryBound(to: UInt64.self)
        return equalTokenRange(UnsafeBufferPointer(start: tokens, count: n), t)
    }

    private static func insert(
        intoLeaf leaf: UnsafeMutableRawPointer, count n: Int, at position: Int, token t: UInt64,
        entry: UnsafeMutableRawPointer
    ) {
        // unsafe: shifts slots [position, n) up by one inside the 32-slot arrays (n < 32).
        let tokens = leaf + tokensOffset + 8 * position
        memmove(tokens + 8, tokens, 8 * (n - position))
        let entries = leaf + entriesOffset + 8 * position
        memmove(entries + 8, entries, 8 * (n - position))
        setToken(leaf, position, t)
        setEntry(leaf, position, entry)
        setCount(leaf, n + 1)
    }

    private static func insert(
        intoInner node: UnsafeMutableRawPointer, children: Int, at slot: Int,
        separator: (UInt64, UnsafeMutableRawPointer), child newChild: UnsafeMutableRawPointer
    ) {
        // unsafe: shifts separators [slot, children-1) and children [slot+1, children) up by
        // one; children < 32, so the last slot written is ≤ 31.
        let separators = children - 1
        let tokens = node + tokensOffset + 8 * slot
        memmove(tokens + 8, tokens, 8 * (separators - slot))
        let entries = node + entriesOffset + 8 * slot
        memmove(entries + 8, entries, 8 * (separators - slot))
        let childSlots = node + childrenOffset + 8 * (slot + 1)
        memmove(childSlots + 8, childSlots, 8 * (children - slot - 1))
        setToken(node, slot, separator.0)
        setEntry(node, slot, separator.1)
        setChild(node, slot + 1, newChild)
        setCount(node, children + 1)
    }

    /// Copies `count` token/entry slots of `source` starting at `start` to slot 0 of `target`.
    private static func moveSlots(
        from source: UnsafeMutableRawPointer, start: Int, count n: Int, to target: UnsafeMutableRawPointer
    ) {
        // unsafe: both ranges lie inside the 32-slot arrays (start + n ≤ 32).
        (target + tokensOffset).copyMemory(from: source + tokensOffset + 8 * start, byteCount: 8 * n)
        (target + entriesOffset).copyMemory(from: source + entriesOffset + 8 * start, byteCount: 8 * n)
    }

    /// Splits a full inner node while adding (separator, child) after child `slot`;
    /// returns the separator to push up and the new right node.
    private func splitInner(
        _ node: UnsafeMutableRawPointer, at slot: Int, separator: (UInt64, UnsafeMutableRawPointer),
        child newChild: UnsafeMutableRawPointer
    ) -> ((UInt64, UnsafeMutableRawPointer), UnsafeMutableRawPointer) {
        let children = Self.count(node)
        var separators = (0..<(children - 1)).map { (Self.token(node, $0), Self.entry(node, $0)) }
        var childList = (0..<children).map { Self.child(node, $0) }
        separators.insert(separator, at: slot)
        childList.insert(newChild, at: slot + 1)
        let leftChildren = childList.count / 2
        let right = newNode(leaf: false)
        for (i, child) in childList.enumerated() {
            if i < leftChildren { Self.setChild(node, i, child) } else { Self.setChild(right, i - leftChildren, child) }
        }
        for (i, s) in separators.enumerated() where i != leftChildren - 1 {
            let target = i < leftChildren - 1 ? node : right
            let index = i < leftChildren - 1 ? i : i - leftChildren
            Self.setToken(target, index, s.0)
            Self.setEntry(target, index, s.1)
        }
        Self.setCount(node, leftChildren)
        Self.setCount(right, childList.count - leftChildren)
        return (separators[leftChildren - 1], right)
    }

    private func newNode(leaf: Bool) -> UnsafeMutableRawPointer {
        let node = nodeArena.allocate(leaf ? Self.leafBytes : Self.innerBytes, alignment: 64)
        // unsafe: header of a fresh node; slots are written before they are counted.
        node.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        node.storeBytes(of: leaf ? 1 : 0, toByteOffset: 4, as: UInt32.self)
        return node
    }

    private func writeEntry(_ key: UnsafeRawBufferPointer, blob: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let entry = recordArena.allocate(12 + key.count)
        // unsafe: a fresh block of 12 + key length bytes.
        entry.storeBytes(of: blob, as: UnsafeMutableRawPointer.self)
        entry.storeBytes(of: UInt32(key.count), toByteOffset: 8, as: UInt32.self)
        if let base = key.baseAddress, key.count > 0 { (entry + 12).copyMemory(from: base, byteCount: key.count) }
        return entry
    }

    private func writeBlob(_ record: Record) -> UnsafeMutableRawPointer {
        let valueCount = record.valueByteCount
        let blob = recordArena.allocate(Self.blobHeader + valueCount)
        // unsafe: `blob` is a fresh arena block of header + value length bytes.
        blob.storeBytes(of: record.timestamp.rawValue, toByteOffset: 0, as: UInt64.self)
        blob.storeBytes(of: record.expiresAtMillis ?? 0, toByteOffset: 8, as: UInt64.self)
        blob.storeBytes(of: UInt32(valueCount), toByteOffset: 16, as: UInt32.self)
        let flags: UInt8 = (record.isTombstone ? 1 : 0) | (record.expiresAtMillis != nil ? 2 : 0)
        blob.storeBytes(of: flags, toByteOffset: 20, as: UInt8.self)
        if case .value(let value) = record.payload, valueCount > 0 {
            value.bytes.withUnsafeBytes { raw in
                (blob + Self.blobHeader).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            }
        }
        return blob
    }
}

extension Record {
    /// `supersedes` against a stored entry, decoding the stored record only on a timestamp tie.
    fileprivate func supersedes(storedIn entry: UnsafeMutableRawPointer) -> Bool {
        // unsafe: the entry's blob pointer and the blob's timestamp were written by `put`.
        let stored = entry.load(as: UnsafeMutableRawPointer.self).load(as: UInt64.self)
        if stored != timestamp.rawValue { return timestamp.rawValue > stored }
        return supersedes(Memtable.record(ofEntry: entry))
    }
}

/// Walks a memtable in `(token, key)` order up to an inclusive token bound. Holds a
/// strong reference to the memtable, so its nodes stay valid. If the writer inserts
/// new keys between two `next()` calls (same actor, across an await), the iterator
/// re-seeks just past the last entry it returned, so it never skips or repeats a key.
public struct MemtableIterator: SortedEntrySource {
    let table: Memtable
    let upperToken: UInt64
    private var leaf: UnsafeMutableRawPointer?
    private var slot = 0
    private var version: UInt64 = 0
    /// Where to resume after a structural change: the seek target, or the last key returned.
    private var resumeToken: UInt64 = 0
    private var resumeKey: Key = Key([])
    private var resumeAfter = false

    init(table: Memtable, upperToken: UInt64) {
        self.table = table
        self.upperToken = upperToken
    }

    /// Positions the iterator at the first entry ≥ (token, key). O(log n).
    public mutating func seek(token: Token, key: Key) {
        resumeToken = token.rawValue
        resumeKey = key
        resumeAfter = false
        reposition()
    }

    /// The next entry, or nil past the end or the token bound. Never throws (memory).
    public mutating func next() throws(KVError) -> Entry? {
        if version != table.structureVersion { reposition() }
        while let current = leaf {
            if slot < Memtable.count(current) {
                if Memtable.token(current, slot) > upperToken {
                    leaf = nil
                    return nil
                }
                let entry = Memtable.makeEntry(current, slot)
                slot += 1
                resumeToken = entry.token.rawValue
                resumeKey = entry.key
                resumeAfter = true
                return entry
            }
            leaf = Memtable.next(current)
            slot = 0
        }
        return nil
    }

    private mutating func reposition() {
        let (token, after) = (resumeToken, resumeAfter)
        (leaf, slot) = resumeKey.bytes.withUnsafeBytes { table.locate(token, $0, strictlyAfter: after) }
        version = table.structureVersion
    }
}
