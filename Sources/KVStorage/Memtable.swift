#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// The in-memory write buffer of a shard: every recent write, sorted by
/// `(token, key)`, one visible version per key (the newest by `Record.supersedes`).
///
/// It is a skiplist (branching factor 4, at most 12 levels) whose nodes and records
/// live in an arena of large malloc'd chunks, so an insert allocates no Swift
/// object: ≈ 1 µs per insert at 500 k entries in a release build. Memory is given
/// back only when the memtable is deallocated (after its flush).
///
/// **Threading rule.** One writer: the owning actor calls `put` and may read
/// (`get`, iterators) between its own writes. After `freeze()` the memtable is
/// immutable and any thread may read it concurrently (the hand-over must be a
/// synchronising event such as an actor hop, which Swift concurrency provides).
/// Reading a memtable that is not frozen from another thread while the writer runs
/// is not allowed. Hence `@unchecked Sendable`.
public final class Memtable: @unchecked Sendable {
    // Node layout in the arena (8-byte aligned):
    //   0  token        u64
    //   8  record       pointer to a record blob (replaced when a newer version arrives)
    //  16  keyLength    u32
    //  20  height       u32
    //  24  next[height] pointers (nil = end of that level)
    //  24 + 8*height    key bytes
    // Record blob layout:
    //   0  timestamp u64 · 8 expiry u64 · 16 value length u32 · 20 flags u8 (bit 0 tombstone,
    //   bit 1 has expiry) · 24 value bytes
    static let maxHeight = 12
    static let chunkBytes = 1 << 20
    static let nodeHeader = 24
    static let blobHeader = 24

    private var chunks: [UnsafeMutableRawPointer] = []
    private var chunkCursor: UnsafeMutableRawPointer?
    private var chunkRemaining = 0
    private let head: UnsafeMutableRawPointer
    /// Scratch for the predecessors found during an insert, one per level.
    private let predecessors: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private var height = 1
    private var randomState: UInt64

    /// Number of distinct keys held.
    public private(set) var count = 0
    /// Bytes of keys, records and skiplist nodes written into the arena (including
    /// superseded record versions): the figure to compare with the flush threshold.
    public private(set) var approximateBytes = 0
    /// Smallest and largest record timestamp ever put (nil when empty). Superseded
    /// versions count too, so the bounds are conservative.
    public private(set) var minTimestamp: Timestamp?
    public private(set) var maxTimestamp: Timestamp?
    /// True after `freeze()`: no more writes, safe to read from any thread.
    public private(set) var isFrozen = false

    /// An empty memtable. `seed` only varies the skiplist's tower heights.
    public init(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        randomState = seed == 0 ? 1 : seed
        let headSize = Self.nodeHeader + 8 * Self.maxHeight
        // unsafe: the head node is a fixed-size raw allocation freed in deinit; its
        // next pointers are zeroed (nil) before any use.
        head = UnsafeMutableRawPointer.allocate(byteCount: headSize, alignment: 8)
        head.initializeMemory(as: UInt8.self, repeating: 0, count: headSize)
        head.storeBytes(of: UInt32(Self.maxHeight), toByteOffset: 20, as: UInt32.self)
        // unsafe: scratch array of maxHeight pointers, all initialised to head, freed in deinit.
        predecessors = .allocate(capacity: Self.maxHeight)
        predecessors.initialize(repeating: head, count: Self.maxHeight)
    }

    deinit {
        // unsafe: every chunk came from malloc in `allocate(_:)` and is freed exactly once here.
        for chunk in chunks { free(chunk) }
        head.deallocate()
        predecessors.deallocate()
    }

    /// Makes the memtable read-only; later `put`s are a programming error (trap).
    public func freeze() { isFrozen = true }

    // MARK: Writing

    /// Inserts `entry`; if the key is present, keeps whichever version supersedes.
    public func put(_ entry: Entry) {
        put(key: entry.key, token: entry.token, record: entry.record)
    }

    /// Inserts a version of `key` (whose token is `token`). Cost: O(log n)
    /// comparisons (token first, then memcmp of keys) and one arena copy.
    public func put(key: Key, token: Token, record: Record) {
        precondition(!isFrozen, "put on a frozen memtable")
        if minTimestamp.map({ record.timestamp < $0 }) ?? true { minTimestamp = record.timestamp }
        if maxTimestamp.map({ record.timestamp > $0 }) ?? true { maxTimestamp = record.timestamp }
        key.bytes.withUnsafeBytes { keyBytes in
            let found = findGreaterOrEqual(token.rawValue, keyBytes, recordPredecessors: true)
            if let found, compare(found, token.rawValue, keyBytes) == 0 {
                if record.supersedes(storedTimestampFirst: found) {
                    found.storeBytes(of: writeBlob(record), toByteOffset: 8, as: UnsafeMutableRawPointer.self)
                }
                return
            }
            let nodeHeight = randomHeight()
            if nodeHeight > height {
                for level in height..<nodeHeight { predecessors[level] = head }
                height = nodeHeight
            }
            let blob = writeBlob(record)
            let node = allocate(Self.nodeHeader + 8 * nodeHeight + keyBytes.count)
            // unsafe: `node` is a fresh arena block sized for header, tower and key above.
            node.storeBytes(of: token.rawValue, toByteOffset: 0, as: UInt64.self)
            node.storeBytes(of: blob, toByteOffset: 8, as: UnsafeMutableRawPointer.self)
            node.storeBytes(of: UInt32(keyBytes.count), toByteOffset: 16, as: UInt32.self)
            node.storeBytes(of: UInt32(nodeHeight), toByteOffset: 20, as: UInt32.self)
            if let base = keyBytes.baseAddress, keyBytes.count > 0 {
                (node + Self.nodeHeader + 8 * nodeHeight).copyMemory(from: base, byteCount: keyBytes.count)
            }
            for level in 0..<nodeHeight {
                let previous = predecessors[level]
                Self.setNext(node, level, Self.next(previous, level))
                Self.setNext(previous, level, node)
            }
            count += 1
        }
    }

    // MARK: Reading

    /// The stored version of `key`, or nil. Tombstones and expired values are
    /// returned as they are (the caller decides visibility).
    public func get(key: Key, token: Token) -> Record? {
        key.bytes.withUnsafeBytes { keyBytes -> Record? in
            guard let node = findGreaterOrEqual(token.rawValue, keyBytes, recordPredecessors: false),
                compare(node, token.rawValue, keyBytes) == 0
            else { return nil }
            return Self.record(of: node)
        }
    }

    /// An iterator over the entries whose token lies in `tokens`, in order.
    public func makeIterator(tokens: ClosedRange<Token> = Token.min...Token.max) -> MemtableIterator {
        var iterator = MemtableIterator(table: self, node: nil, upperToken: tokens.upperBound.rawValue)
        iterator.seek(token: tokens.lowerBound, key: Key([]))
        return iterator
    }

    // MARK: Internals shared with the iterator

    func firstNode(atOrAfter token: UInt64, key: [UInt8]) -> UnsafeMutableRawPointer? {
        key.withUnsafeBytes { findGreaterOrEqual(token, $0, recordPredecessors: false) }
    }

    static func next(_ node: UnsafeMutableRawPointer, _ level: Int) -> UnsafeMutableRawPointer? {
        // unsafe: level < node's height, so the slot lies inside the node's tower.
        node.load(fromByteOffset: nodeHeader + 8 * level, as: UnsafeMutableRawPointer?.self)
    }

    static func setNext(_ node: UnsafeMutableRawPointer, _ level: Int, _ target: UnsafeMutableRawPointer?) {
        // unsafe: as in `next`, the slot lies inside the node's tower.
        node.storeBytes(of: target, toByteOffset: nodeHeader + 8 * level, as: UnsafeMutableRawPointer?.self)
    }

    static func token(of node: UnsafeMutableRawPointer) -> UInt64 {
        node.load(as: UInt64.self)
    }

    static func entry(of node: UnsafeMutableRawPointer) -> Entry {
        // unsafe: the key bytes follow the tower; length and height were written by `put`.
        let keyLength = Int(node.load(fromByteOffset: 16, as: UInt32.self))
        let nodeHeight = Int(node.load(fromByteOffset: 20, as: UInt32.self))
        let key = Array(UnsafeRawBufferPointer(start: node + nodeHeader + 8 * nodeHeight, count: keyLength))
        return Entry(token: Token(rawValue: token(of: node)), key: Key(key), record: record(of: node))
    }

    static func record(of node: UnsafeMutableRawPointer) -> Record {
        // unsafe: the blob pointer was written by `put` and points into the arena.
        let blob = node.load(fromByteOffset: 8, as: UnsafeMutableRawPointer.self)
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

    /// Three-way comparison of a node's (token, key) with the probe.
    @inline(__always)
    private func compare(_ node: UnsafeMutableRawPointer, _ token: UInt64, _ key: UnsafeRawBufferPointer) -> Int {
        let nodeToken = node.load(as: UInt64.self)
        if nodeToken != token { return nodeToken < token ? -1 : 1 }
        // unsafe: reads the node's key bytes, whose length is stored in the node.
        let keyLength = Int(node.load(fromByteOffset: 16, as: UInt32.self))
        let nodeHeight = Int(node.load(fromByteOffset: 20, as: UInt32.self))
        let common = min(keyLength, key.count)
        if common > 0, let probe = key.baseAddress {
            let c = memcmp(node + Self.nodeHeader + 8 * nodeHeight, probe, common)
            if c != 0 { return c < 0 ? -1 : 1 }
        }
        return keyLength == key.count ? 0 : (keyLength < key.count ? -1 : 1)
    }

    /// The first node ≥ (token, key), or nil; optionally records each level's last node < probe.
    @inline(__always)
    private func findGreaterOrEqual(
        _ token: UInt64, _ key: UnsafeRawBufferPointer, recordPredecessors: Bool
    ) -> UnsafeMutableRawPointer? {
        var node = head
        var level = height - 1
        while true {
            let candidate = Self.next(node, level)
            if let candidate, compare(candidate, token, key) < 0 {
                node = candidate
            } else {
                if recordPredecessors { predecessors[level] = node }
                if level == 0 { return candidate }
                level -= 1
            }
        }
    }

    private func randomHeight() -> Int {
        var nodeHeight = 1
        while nodeHeight < Self.maxHeight {
            // xorshift64: cheap, deterministic for a given seed.
            randomState ^= randomState << 13
            randomState ^= randomState >> 7
            randomState ^= randomState << 17
            if randomState & 3 != 0 { break }
            nodeHeight += 1
        }
        return nodeHeight
    }

    private func writeBlob(_ record: Record) -> UnsafeMutableRawPointer {
        let valueBytes = record.value?.bytes ?? []
        let blob = allocate(Self.blobHeader + valueBytes.count)
        // unsafe: `blob` is a fresh arena block of header + value length bytes.
        blob.storeBytes(of: record.timestamp.rawValue, toByteOffset: 0, as: UInt64.self)
        blob.storeBytes(of: record.expiresAtMillis ?? 0, toByteOffset: 8, as: UInt64.self)
        blob.storeBytes(of: UInt32(valueBytes.count), toByteOffset: 16, as: UInt32.self)
        let flags: UInt8 = (record.isTombstone ? 1 : 0) | (record.expiresAtMillis != nil ? 2 : 0)
        blob.storeBytes(of: flags, toByteOffset: 20, as: UInt8.self)
        valueBytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 {
                (blob + Self.blobHeader).copyMemory(from: base, byteCount: raw.count)
            }
        }
        return blob
    }

    /// Bump allocation from the current chunk; large requests get a chunk of their own.
    private func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let rounded = (size + 7) & ~7
        approximateBytes += rounded
        if rounded > chunkRemaining {
            if rounded > Self.chunkBytes / 4 {
                // unsafe: a dedicated malloc'd chunk, recorded for `free` in deinit.
                guard let block = malloc(rounded) else { preconditionFailure("memtable arena: out of memory") }
                chunks.append(block)
                return block
            }
            guard let chunk = malloc(Self.chunkBytes) else { preconditionFailure("memtable arena: out of memory") }
            chunks.append(chunk)
            chunkCursor = chunk
            chunkRemaining = Self.chunkBytes
        }
        // unsafe: the cursor stays within the current chunk (rounded ≤ chunkRemaining).
        let block = chunkCursor!
        chunkCursor = block + rounded
        chunkRemaining -= rounded
        return block
    }
}

extension Record {
    /// `supersedes` against a stored blob, decoding the stored record only on a timestamp tie.
    fileprivate func supersedes(storedTimestampFirst node: UnsafeMutableRawPointer) -> Bool {
        // unsafe: the blob pointer and its timestamp were written by `Memtable.put`.
        let blob = node.load(fromByteOffset: 8, as: UnsafeMutableRawPointer.self)
        let stored = blob.load(as: UInt64.self)
        if stored != timestamp.rawValue { return timestamp.rawValue > stored }
        return supersedes(Memtable.record(of: node))
    }
}

/// Walks a memtable in `(token, key)` order up to an inclusive token bound.
/// Holds a strong reference to the memtable, so its nodes stay valid.
public struct MemtableIterator: SortedEntrySource {
    let table: Memtable
    var node: UnsafeMutableRawPointer?
    let upperToken: UInt64

    /// Positions the iterator at the first entry ≥ (token, key). O(log n).
    public mutating func seek(token: Token, key: Key) {
        node = table.firstNode(atOrAfter: token.rawValue, key: key.bytes)
    }

    public mutating func next() throws(KVError) -> Entry? {
        guard let current = node, Memtable.token(of: current) <= upperToken else { return nil }
        node = Memtable.next(current, 0)
        return Memtable.entry(of: current)
    }
}
