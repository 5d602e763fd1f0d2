import KVCore

/// One SSTable data block, read from disk and verified: its CRC32C matched and its
/// offset array is in bounds and ascending, so entry starts can be trusted. Entry
/// bodies are still decoded with bounds checks (a malformed body is a corruption
/// error, never a crash). Immutable; shared through the `BlockCache`.
final class Block: Sendable {
    /// The block's bytes without the CRC trailer.
    let bytes: [UInt8]
    /// Start of each entry, ascending; entry i ends where i+1 starts (or at `entriesEnd`).
    let offsets: [UInt32]
    /// Each entry's token, decoded once when the block is read: a lookup scans these
    /// 8-byte values in one pass instead of chasing an offset per binary-search probe.
    let tokens: [UInt64]
    let entriesEnd: Int
    /// Where the block starts in its file, for error messages.
    let fileOffset: Int64
    let path: String

    var entryCount: Int { offsets.count }
    /// What the block costs in the cache, in bytes.
    var cost: Int { bytes.count + 12 * offsets.count + 128 }

    /// Verifies `raw` (block + trailer) read at `fileOffset` of `path`.
    init(verifying raw: [UInt8], path: String, fileOffset: Int64) throws(KVError) {
        self.path = path
        self.fileOffset = fileOffset
        let body = try verifiedPayload(raw, path: path, offset: fileOffset, what: "data block")
        func corrupt(_ reason: String) -> KVError { .corruption(path: path, offset: fileOffset, reason: reason) }
        guard body.count >= 4 else { throw corrupt("data block shorter than its entry count") }
        let count = body.withUnsafeBytes {
            Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: body.count - 4, as: UInt32.self)))
        }
        guard count > 0, count <= (body.count - 4) / 4 else { throw corrupt("data block entry count \(count) invalid") }
        let end = body.count - 4 - 4 * count
        // Each entry is at least token (8) + flags (1) + key length (1) + timestamp (8) bytes.
        let minimumEntry = 18
        var offsets: [UInt32] = []
        offsets.reserveCapacity(count)
        var tokens: [UInt64] = []
        tokens.reserveCapacity(count)
        try withBytes(body) { raw throws(KVError) in
            var previous = -minimumEntry
            for i in 0..<count {
                let offset = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: end + 4 * i, as: UInt32.self)))
                guard i > 0 || offset == 0 else { throw corrupt("data block does not start with an entry") }
                guard offset >= previous + minimumEntry, offset + minimumEntry <= end
                else { throw corrupt("data block entry offset \(i) out of place") }
                previous = offset
                offsets.append(UInt32(offset))
                tokens.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            }
        }
        self.bytes = body
        self.offsets = offsets
        self.tokens = tokens
        self.entriesEnd = end
    }

    /// Token of entry `i` (trusted: offsets were validated).
    func token(at i: Int) -> UInt64 { tokens[i] }

    private func range(of i: Int) -> Range<Int> {
        Int(offsets[i])..<(i + 1 < offsets.count ? Int(offsets[i + 1]) : entriesEnd)
    }

    /// Compares entry `i` with (token, key) in the engine's order.
    func compare(at i: Int, token: UInt64, key: UnsafeRawBufferPointer) throws(KVError) -> Int {
        let own = self.token(at: i)
        if own != token { return own < token ? -1 : 1 }
        let r = range(of: i)
        return try withBytes(bytes) { raw throws(KVError) -> Int in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[r]), offset: 9)
            do {
                let length = try reader.readVarint()
                guard length <= UInt64(reader.remaining) else { throw ByteReader.Error.malformedVarint }
                let stored = try reader.readSlice(count: Int(length))
                return compareBytes(stored, key)
            } catch {
                throw KVError.corruption(path: path, offset: fileOffset + Int64(r.lowerBound), reason: "entry key malformed")
            }
        }
    }

    /// Index of the first entry ≥ (token, key), or `entryCount`: a branch-free count of
    /// the smaller tokens, then key comparisons only among entries that share the token.
    func lowerBound(token: UInt64, key: [UInt8]) throws(KVError) -> Int {
        var (slot, end) = tokens.withUnsafeBufferPointer { equalTokenRange($0, token) }
        guard slot < end else { return slot }
        return try withBytes(key) { probe throws(KVError) -> Int in
            while slot < end, try compare(at: slot, token: token, key: probe) < 0 { slot += 1 }
            return slot
        }
    }

    /// Decodes the record of entry `i` without copying its key (a point lookup has
    /// compared it already). The body must decode exactly to its extent.
    func record(at i: Int) throws(KVError) -> Record {
        let r = range(of: i)
        return try withBytes(bytes) { raw throws(KVError) -> Record in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[r]), offset: 8)
            do {
                let record = try EntryCodec.decodeRecord(from: &reader)
                guard reader.isAtEnd else { throw EntryCodecError.badFlags(0) }
                return record
            } catch {
                throw KVError.corruption(
                    path: path, offset: fileOffset + Int64(r.lowerBound), reason: "entry malformed: \(error)")
            }
        }
    }

    /// Decodes entry `i`. The body must decode exactly to its extent.
    func entry(at i: Int) throws(KVError) -> Entry {
        let r = range(of: i)
        return try withBytes(bytes) { raw throws(KVError) -> Entry in
            var reader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[r]))
            do {
                let token = try reader.read(littleEndian: UInt64.self)
                let (key, record) = try EntryCodec.decode(from: &reader)
                guard reader.isAtEnd else { throw EntryCodecError.badFlags(0) }
                return Entry(token: Token(rawValue: token), key: key, record: record)
            } catch {
                throw KVError.corruption(
                    path: path, offset: fileOffset + Int64(r.lowerBound), reason: "entry malformed: \(error)")
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
