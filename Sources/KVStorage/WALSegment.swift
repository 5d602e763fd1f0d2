import KVCore

/// The byte layout of WAL segment files (see FORMAT.md, "Write-ahead log").
///
/// A segment is a 16-byte header followed by frames. Each frame holds one
/// mutation batch and is checked by CRC32C; it also repeats the segment number so
/// stale frames left in a recycled file are never mistaken for new ones.
enum WALSegment {
    /// "KWAL" read as a little-endian u32.
    static let magic: UInt32 = 0x4C41_574B
    static let version: UInt16 = 1
    static let headerSize = 16
    /// crc u32 + length u32 + segment u64 + sequence u64.
    static let frameHeaderSize = 24

    /// `wal-000000000042.log`.
    static func fileName(_ segment: UInt64) -> String {
        let digits = String(segment)
        return "wal-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".log"
    }

    /// The segment number of a WAL file name, or nil for any other name.
    static func segmentNumber(fileName: String) -> UInt64? {
        guard fileName.hasPrefix("wal-"), fileName.hasSuffix(".log") else { return nil }
        return UInt64(fileName.dropFirst(4).dropLast(4))
    }

    static func header(segment: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: headerSize)
        w.write(littleEndian: magic)
        w.write(littleEndian: version)
        w.write(littleEndian: UInt16(0))
        w.write(littleEndian: segment)
        return w.bytes
    }

    /// Appends one frame holding `entries` (numbered from `sequence`) to `writer`.
    static func appendFrame(
        entries: [Entry], segment: UInt64, sequence: UInt64, into writer: inout ByteWriter
    ) {
        let start = writer.count
        writer.write(littleEndian: UInt32(0))  // crc, patched below
        writer.write(littleEndian: UInt32(0))  // length, patched below
        writer.write(littleEndian: segment)
        writer.write(littleEndian: sequence)
        writer.write(varint: UInt64(entries.count))
        for i in entries.indices { EntryCodec.encode(key: entries[i].key, record: entries[i].record, into: &writer) }
        let length = writer.count - start - frameHeaderSize
        writer.patch(littleEndian: UInt32(length), at: start + 4)
        let crc = writer.bytes.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(start + 4)..<writer.count]))
        }
        writer.patch(littleEndian: crc, at: start)
    }

    /// One batch read back from a segment.
    struct Batch: Sendable {
        var sequence: UInt64
        var entries: [Entry]
    }

    /// What reading one segment found.
    struct Contents: Sendable {
        var batches: [Batch]
        /// Offset just past the last valid frame.
        var validEnd: Int
        /// True when bytes after `validEnd` are neither zeros nor stale frames of an
        /// earlier life of the file, i.e. a torn or damaged last frame.
        var damagedTail: Bool
    }

    /// Why a frame at an offset is not a valid frame of this segment.
    private enum FrameCheck {
        case valid(length: Int)
        case end
        case invalid
    }

    private static func check(_ raw: UnsafeRawBufferPointer, at offset: Int, segment: UInt64) -> FrameCheck {
        guard offset + frameHeaderSize <= raw.count else {
            return raw[offset...].allSatisfy { $0 == 0 } ? .end : .invalid
        }
        let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
        let frameSegment = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        if crc == 0 && length == 0 && frameSegment == 0 { return .end }  // preallocated zeros
        guard frameSegment == segment, length > 0, offset + frameHeaderSize + length <= raw.count else {
            return .invalid
        }
        let computed = CRC32C.checksum(
            UnsafeRawBufferPointer(rebasing: raw[(offset + 4)..<(offset + frameHeaderSize + length)]))
        return computed == crc ? .valid(length: length) : .invalid
    }

    /// Whether a valid frame of `segment` starts anywhere after `offset`: tells
    /// damage in the middle of a log (refuse to open) from a torn tail (truncate).
    static func hasValidFrame(after offset: Int, in raw: UnsafeRawBufferPointer, segment: UInt64) -> Bool {
        var candidate = offset + 1
        while candidate + frameHeaderSize <= raw.count {
            // The segment number is a cheap 8-byte filter before any checksum.
            let s = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: candidate + 8, as: UInt64.self))
            if s == segment, case .valid = check(raw, at: candidate, segment: segment) { return true }
            candidate += 1
        }
        return false
    }

    /// Decodes the frames of one segment file's bytes. Throws `KVError.corruption`
    /// for a bad header, a frame that passes its checksum but does not decode, or a
    /// damaged frame followed by valid ones.
    static func read(_ bytes: [UInt8], segment: UInt64, path: String) throws(KVError) -> Contents {
        let result: Result<Contents, KVError> = bytes.withUnsafeBytes { raw in
            guard raw.count >= headerSize else {
                // A crash right after creating the file may leave it shorter than its header.
                return raw.allSatisfy({ $0 == 0 })
                    ? .success(Contents(batches: [], validEnd: 0, damagedTail: false))
                    : .success(Contents(batches: [], validEnd: 0, damagedTail: true))
            }
            var r = ByteReader(raw)
            let magic = (try? r.read(littleEndian: UInt32.self)) ?? 0
            let version = (try? r.read(littleEndian: UInt16.self)) ?? 0
            _ = try? r.read(littleEndian: UInt16.self)
            let headerSegment = (try? r.read(littleEndian: UInt64.self)) ?? 0
            guard magic == Self.magic, version == Self.version, headerSegment == segment else {
                // A crash after a spare was renamed into place but before its header was
                // durable leaves the spare's old bytes: zeros, or a recycled segment's header
                // with an older number. The header is synced before any frame is written, so
                // such a segment holds nothing acknowledged: a torn tail at offset 0 — unless
                // a frame of this segment is found in it, which means real damage.
                let zeros = UnsafeRawBufferPointer(rebasing: raw[..<headerSize]).allSatisfy { $0 == 0 }
                let recycled = magic == Self.magic && version == Self.version && headerSegment < segment
                if (zeros || recycled) && !hasValidFrame(after: headerSize - 1, in: raw, segment: segment) {
                    return .success(Contents(batches: [], validEnd: 0, damagedTail: true))
                }
                return .failure(.corruption(path: path, offset: 0, reason: "bad WAL segment header"))
            }
            var batches: [Batch] = []
            var offset = headerSize
            while true {
                switch check(raw, at: offset, segment: segment) {
                case .end:
                    return .success(Contents(batches: batches, validEnd: offset, damagedTail: false))
                case .invalid:
                    if hasValidFrame(after: offset, in: raw, segment: segment) {
                        return .failure(
                            .corruption(
                                path: path, offset: Int64(offset),
                                reason: "damaged WAL frame followed by valid frames"))
                    }
                    // Stale frames of a recycled file carry another segment number: not damage.
                    let stale = offset + frameHeaderSize <= raw.count
                        && UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                            != segment
                    return .success(Contents(batches: batches, validEnd: offset, damagedTail: !stale))
                case .valid(let length):
                    var payload = ByteReader(
                        UnsafeRawBufferPointer(
                            rebasing: raw[(offset + frameHeaderSize)..<(offset + frameHeaderSize + length)]))
                    let sequence = UInt64(
                        littleEndian: raw.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
                    do {
                        let count = try payload.readVarint()
                        var entries: [Entry] = []
                        entries.reserveCapacity(Int(min(count, 1 << 16)))
                        for _ in 0..<count {
                            let (key, record) = try EntryCodec.decode(from: &payload)
                            entries.append(Entry(key: key, record: record))
                        }
                        guard payload.isAtEnd else { throw EntryCodecError.badFlags(0) }
                        batches.append(Batch(sequence: sequence, entries: entries))
                    } catch {
                        return .failure(
                            .corruption(
                                path: path, offset: Int64(offset),
                                reason: "WAL frame passed its checksum but does not decode"))
                    }
                    offset += frameHeaderSize + length
                }
            }
        }
        return try result.get()
    }
}
