import KVCore

/// One SSTable data block, read from disk and verified: its CRC32C matched and its
/// offset array is in bounds and ascending, so entry starts can be trusted. Entry
/// bodies are still decoded with bounds checks (a malformed body is a corruption
/// error, never a crash). Immutable once built; shared through the `BlockCache`.
///
/// One allocation holds everything a lookup touches, in the order it touches it: the
/// header (with the object's reference count), each entry's token (decoded once, so a
/// lookup scans 8-byte values in one pass instead of chasing an offset per probe), then
/// the entry offsets, then the block's bytes. A random point read into a cached block
/// misses the CPU cache once on the object and its tokens, not on the object and then on
/// separate buffers (`tokens`, `offsets` and `bytes` were arrays, then one buffer of its
/// own: each a dependent miss).
final class Block: ManagedBuffer<Block.Header, UInt64> {
    // Not Sendable (a `ManagedBuffer` cannot be), yet shared across threads through the
    // `BlockCache`, which is sound: the elements are written once in `verifying` and
    // read-only afterwards, and `header.referenced` is read and written only under the
    // cache's lock.

    struct Header {
        /// Entries in the block.
        var count: Int
        /// Bytes of the block without the CRC trailer.
        var bodyCount: Int
        /// Where the entries end and the offset array begins, in the body.
        var entriesEnd: Int
        /// Where the block starts in its file, and the file, for error messages.
        var fileOffset: Int64
        var path: String
        /// The CLOCK reference bit of the `BlockCache` holding the block (see there).
        var referenced = false

        /// Byte offsets in the elements: the tokens come first (8 bytes each), then the
        /// offsets (4 bytes each), then the body at the next 8-byte boundary.
        var offsetsStart: Int { 8 * count }
        var bodyStart: Int { offsetsStart + (4 * count + 7) / 8 * 8 }
    }

    var entryCount: Int { header.count }
    var fileOffset: Int64 { header.fileOffset }
    var path: String { header.path }
    /// What the block costs in the cache, in bytes.
    var cost: Int { header.bodyCount + 12 * header.count + 128 }

    /// Verifies `raw` (block + trailer) read at `fileOffset` of `path`.
    static func verifying(_ raw: [UInt8], path: String, fileOffset: Int64) throws(KVError) -> Block {
        let body = try verifiedPayload(raw, path: path, offset: fileOffset, what: "data block")
        func corrupt(_ reason: String) -> KVError { .corruption(path: path, offset: fileOffset, reason: reason) }
        guard body.count >= 4 else { throw corrupt("data block shorter than its entry count") }
        let count = body.withUnsafeBytes {
            Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: body.count - 4, as: UInt32.self)))
        }
        guard count > 0, count <= (body.count - 4) / 4 else { throw corrupt("data block entry count \(count) invalid") }
        let end = body.count - 4 - 4 * count
        let header = Header(count: count, bodyCount: body.count, entriesEnd: end, fileOffset: fileOffset, path: path)
        let offsetsStart = header.offsetsStart, bodyStart = header.bodyStart
        let words = (bodyStart + body.count + 7) / 8
        // unsafe: `create` is called on `Block`, so the buffer it makes is a `Block`.
        let block = unsafeDowncast(Block.create(minimumCapacity: words) { _ in header }, to: Block.self)
        // Each entry is at least token (8) + flags (1) + key length (1) + timestamp (8) bytes.
        let minimumEntry = 18
        // unsafe: the elements hold the tokens, the offsets and the body at the starts
        // computed above (`words` 8-byte words); every write below stays inside them. The
        // tokens stay bound to `UInt64`, the offsets are rebound to `UInt32` and the body
        // to bytes, as `withParts` reads them.
        try block.withUnsafeMutablePointerToElements { words throws(KVError) in
            let tail = UnsafeMutableRawPointer(words)
            (tail + offsetsStart).bindMemory(to: UInt32.self, capacity: count)
            (tail + bodyStart).bindMemory(to: UInt8.self, capacity: body.count)
            try withBytes(body) { raw throws(KVError) in
                (tail + bodyStart).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
                var previous = -minimumEntry
                for i in 0..<count {
                    let offset = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: end + 4 * i, as: UInt32.self)))
                    guard i > 0 || offset == 0 else { throw corrupt("data block does not start with an entry") }
                    guard offset >= previous + minimumEntry, offset + minimumEntry <= end
                    else { throw corrupt("data block entry offset \(i) out of place") }
                    previous = offset
                    tail.storeBytes(of: UInt32(offset), toByteOffset: offsetsStart + 4 * i, as: UInt32.self)
                    words[i] = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                }
            }
        }
        return block
    }

    /// Calls `body` with the tokens, the offsets and the block's bytes (all trusted).
    @inline(__always)
    private func withParts<R, E: Error>(
        _ body: (UnsafeBufferPointer<UInt64>, UnsafeBufferPointer<UInt32>, UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        // The fields one by one: a copy of the whole header would retain its `path`.
        let count = header.count, offsetsStart = header.offsetsStart
        let bodyStart = header.bodyStart, bodyCount = header.bodyCount
        // unsafe: the regions were laid out, bound and filled by `verifying`; the pointers
        // do not outlive this call, during which `self` (and so its elements) is alive.
        return try withUnsafeMutablePointerToElements { words throws(E) -> R in
            let tail = UnsafeRawPointer(words)
            let tokens = UnsafeBufferPointer(start: UnsafePointer(words), count: count)
            let offsets = UnsafeBufferPointer(
                start: (tail + offsetsStart).assumingMemoryBound(to: UInt32.self), count: count)
            let bytes = UnsafeRawBufferPointer(start: tail + bodyStart, count: bodyCount)
            return try body(tokens, offsets, bytes)
        }
    }

    /// Token of entry `i` (trusted: offsets were validated).
    func token(at i: Int) -> UInt64 {
        precondition(i >= 0 && i < header.count, "block entry index out of range")
        return withParts { tokens, _, _ in tokens[i] }
    }

    /// The extent of entry `i` in the body: it ends where `i + 1` starts (or at the offsets).
    @inline(__always)
    private static func range(of i: Int, _ offsets: UnsafeBufferPointer<UInt32>, entriesEnd: Int) -> Range<Int> {
        Int(offsets[i])..<(i + 1 < offsets.count ? Int(offsets[i + 1]) : entriesEnd)
    }

    /// Calls `body` with the bytes of entry `i` (trusted extent) and the entry's offset in
    /// the file, for error messages.
    @inline(__always)
    private func withEntry<R>(_ i: Int, _ body: (UnsafeRawBufferPointer, Int64) throws(KVError) -> R) throws(KVError) -> R {
        precondition(i >= 0 && i < header.count, "block entry index out of range")
        let entriesEnd = header.entriesEnd, fileOffset = header.fileOffset
        return try withParts { _, offsets, bytes throws(KVError) -> R in
            let r = Self.range(of: i, offsets, entriesEnd: entriesEnd)
            return try body(UnsafeRawBufferPointer(rebasing: bytes[r]), fileOffset + Int64(r.lowerBound))
        }
    }

    /// Compares entry `i` with (token, key) in the engine's order.
    func compare(at i: Int, token: UInt64, key: UnsafeRawBufferPointer) throws(KVError) -> Int {
        let own = self.token(at: i)
        if own != token { return own < token ? -1 : 1 }
        return try withEntry(i) { raw, at throws(KVError) -> Int in
            var reader = ByteReader(raw, offset: 9)
            do {
                let length = try reader.readVarint()
                guard length <= UInt64(reader.remaining) else { throw ByteReader.Error.malformedVarint }
                let stored = try reader.readSlice(count: Int(length))
                return compareBytes(stored, key)
            } catch {
                throw KVError.corruption(path: path, offset: at, reason: "entry key malformed")
            }
        }
    }

    /// Index of the first entry ≥ (token, key), or `entryCount`, and whether that entry is
    /// (token, key) itself (a point read needs no second comparison to know it found the
    /// key): a branch-free count of the smaller tokens, then key comparisons only among
    /// entries that share the token.
    func lowerBound(token: UInt64, key: [UInt8]) throws(KVError) -> (index: Int, isMatch: Bool) {
        var (slot, end) = withParts { tokens, _, _ in equalTokenRange(tokens, token) }
        guard slot < end else { return (slot, false) }
        return try withBytes(key) { probe throws(KVError) -> (index: Int, isMatch: Bool) in
            // Entries sharing a token are in key order.
            while slot < end {
                let order = try compare(at: slot, token: token, key: probe)
                if order >= 0 { return (slot, order == 0) }
                slot += 1
            }
            return (slot, false)
        }
    }

    /// Decodes the record of entry `i` without copying its key (a point lookup has
    /// compared it already). The body must decode exactly to its extent.
    func record(at i: Int) throws(KVError) -> Record {
        try withEntry(i) { raw, at throws(KVError) -> Record in
            var reader = ByteReader(raw, offset: 8)
            do {
                let record = try EntryCodec.decodeRecord(from: &reader)
                guard reader.isAtEnd else { throw EntryCodecError.badFlags(0) }
                return record
            } catch {
                throw KVError.corruption(path: path, offset: at, reason: "entry malformed: \(error)")
            }
        }
    }

    /// Decodes entry `i`. The body must decode exactly to its extent.
    func entry(at i: Int) throws(KVError) -> Entry {
        try withEntry(i) { raw, at throws(KVError) -> Entry in
            var reader = ByteReader(raw)
            do {
                let token = try reader.read(littleEndian: UInt64.self)
                let (key, record) = try EntryCodec.decode(from: &reader)
                guard reader.isAtEnd else { throw EntryCodecError.badFlags(0) }
                return Entry(token: Token(rawValue: token), key: key, record: record)
            } catch {
                throw KVError.corruption(path: path, offset: at, reason: "entry malformed: \(error)")
            }
        }
    }
}

/// The positions [first, end) of `token` among `tokens` (ascending); empty at the position
/// where it would go. A branch-free count rather than a binary search: a memtable node's or
/// a block's tokens span a few cache lines, and one pass loads them all at once, where a
/// binary search waits for each line before it knows the next (on a random lookup, a cache
/// miss per probe: ≈ 30 % of a GET's CPU went there).
@inline(__always)
func equalTokenRange(_ tokens: UnsafeBufferPointer<UInt64>, _ token: UInt64) -> (Int, Int) {
    var less = 0
    var lessOrEqual = 0
    for own in tokens {
        less &+= own < token ? 1 : 0
        lessOrEqual &+= own <= token ? 1 : 0
    }
    return (less, lessOrEqual)
}
