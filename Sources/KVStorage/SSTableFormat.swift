#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// Constants and section codecs of the SSTable file format (see FORMAT.md):
/// data blocks, then the filter, index and metadata sections, then a 64-byte footer.
enum SSTableFormat {
    /// "KVDSST01" read as a little-endian u64.
    static let magic: UInt64 = 0x3130_5453_5344_564B
    static let version: UInt32 = 1
    static let footerSize = 64
    /// Every block and section ends with a CRC32C (u32 LE) of the bytes before it.
    static let trailerSize = 4
}

/// Where a block or section lies in the file: byte offset and size including its CRC trailer.
struct BlockHandle: Sendable, Equatable {
    var offset: UInt64
    var size: UInt64
}

/// One sparse-index entry: the last (token, key) of a data block and where the block is.
struct IndexEntry: Sendable, Equatable {
    var lastToken: UInt64
    var lastKey: [UInt8]
    var handle: BlockHandle
}

/// What an SSTable holds, summarised when it is written; read back on open without
/// touching data blocks. The compaction planner and the engine's manifest use it.
public struct SSTableMetadata: Sendable, Equatable {
    /// Number of entries (one per key).
    public var entryCount: UInt64
    /// Entries that are tombstones.
    public var tombstoneCount: UInt64
    /// Entries (values) that carry an expiry.
    public var expiringCount: UInt64
    /// Token of the first entry (`.min` when empty).
    public var minToken: Token
    /// Token of the last entry (`.min` when empty).
    public var maxToken: Token
    /// Key of the first entry (empty when the table is empty).
    public var firstKey: Key
    /// Key of the last entry (empty when the table is empty).
    public var lastKey: Key
    /// Oldest record timestamp (`.zero` when empty).
    public var minTimestamp: Timestamp
    /// Newest record timestamp (`.zero` when empty).
    public var maxTimestamp: Timestamp
    /// Latest expiry among expiring values, in wall-clock ms; nil when none expire.
    public var maxExpiryMillis: UInt64?
    /// Wall-clock ms at which the writer was created (injected by the caller).
    public var createdAtMillis: UInt64
    /// Number of data blocks.
    public var blockCount: UInt64

    /// An empty table's metadata.
    public init(createdAtMillis: UInt64) {
        entryCount = 0
        tombstoneCount = 0
        expiringCount = 0
        minToken = .min
        maxToken = .min
        firstKey = Key([])
        lastKey = Key([])
        minTimestamp = .zero
        maxTimestamp = .zero
        maxExpiryMillis = nil
        self.createdAtMillis = createdAtMillis
        blockCount = 0
    }

    /// Token range covered (nil when empty).
    public var tokenRange: ClosedRange<Token>? { entryCount == 0 ? nil : minToken...maxToken }

    func encode(into writer: inout ByteWriter) {
        writer.write(littleEndian: entryCount)
        writer.write(littleEndian: tombstoneCount)
        writer.write(littleEndian: expiringCount)
        writer.write(littleEndian: minToken.rawValue)
        writer.write(littleEndian: maxToken.rawValue)
        writer.write(littleEndian: minTimestamp.rawValue)
        writer.write(littleEndian: maxTimestamp.rawValue)
        writer.write(maxExpiryMillis == nil ? 0 : 1)
        writer.write(littleEndian: maxExpiryMillis ?? 0)
        writer.write(littleEndian: createdAtMillis)
        writer.write(littleEndian: blockCount)
        writer.write(lengthPrefixed: firstKey.bytes)
        writer.write(lengthPrefixed: lastKey.bytes)
    }

    static func decode(from reader: inout ByteReader) throws(ByteReader.Error) -> SSTableMetadata {
        var m = SSTableMetadata(createdAtMillis: 0)
        m.entryCount = try reader.read(littleEndian: UInt64.self)
        m.tombstoneCount = try reader.read(littleEndian: UInt64.self)
        m.expiringCount = try reader.read(littleEndian: UInt64.self)
        m.minToken = Token(rawValue: try reader.read(littleEndian: UInt64.self))
        m.maxToken = Token(rawValue: try reader.read(littleEndian: UInt64.self))
        m.minTimestamp = Timestamp(rawValue: try reader.read(littleEndian: UInt64.self))
        m.maxTimestamp = Timestamp(rawValue: try reader.read(littleEndian: UInt64.self))
        let hasExpiry = try reader.readByte()
        let expiry = try reader.read(littleEndian: UInt64.self)
        m.maxExpiryMillis = hasExpiry != 0 ? expiry : nil
        m.createdAtMillis = try reader.read(littleEndian: UInt64.self)
        m.blockCount = try reader.read(littleEndian: UInt64.self)
        m.firstKey = Key(try reader.readLengthPrefixed())
        m.lastKey = Key(try reader.readLengthPrefixed())
        return m
    }

    /// Folds one appended entry into the summary.
    mutating func include(_ entry: Entry) {
        if entryCount == 0 {
            minToken = entry.token
            firstKey = entry.key
            minTimestamp = entry.record.timestamp
            maxTimestamp = entry.record.timestamp
        }
        entryCount += 1
        maxToken = entry.token
        lastKey = entry.key
        if entry.record.isTombstone { tombstoneCount += 1 }
        if let expiry = entry.record.expiresAtMillis, !entry.record.isTombstone {
            expiringCount += 1
            maxExpiryMillis = max(maxExpiryMillis ?? 0, expiry)
        }
        minTimestamp = min(minTimestamp, entry.record.timestamp)
        maxTimestamp = max(maxTimestamp, entry.record.timestamp)
    }
}

/// The fixed 64-byte tail of every SSTable.
struct SSTableFooter: Equatable {
    var filter: BlockHandle
    var index: BlockHandle
    var metadata: BlockHandle

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: SSTableFormat.footerSize)
        for handle in [filter, index, metadata] {
            w.write(littleEndian: handle.offset)
            w.write(littleEndian: handle.size)
        }
        w.write(littleEndian: SSTableFormat.version)
        w.write(littleEndian: CRC32C.checksum(w.bytes))
        w.write(littleEndian: SSTableFormat.magic)
        return w.bytes
    }

    /// Parses and validates the footer: magic, version, CRC, and that the three
    /// sections are in order, inside the file, and each at least a trailer long.
    static func decode(_ bytes: [UInt8], fileSize: UInt64, path: String) throws(KVError) -> SSTableFooter {
        let footerOffset = Int64(fileSize) - Int64(SSTableFormat.footerSize)
        func corrupt(_ reason: String) -> KVError { .corruption(path: path, offset: footerOffset, reason: reason) }
        guard bytes.count == SSTableFormat.footerSize else { throw corrupt("footer is \(bytes.count) bytes") }
        let fields: [UInt64] = (0..<6).map { i in
            bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        }
        let (version, crc, magic) = bytes.withUnsafeBytes { raw in
            (
                UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 48, as: UInt32.self)),
                UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 52, as: UInt32.self)),
                UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 56, as: UInt64.self))
            )
        }
        guard magic == SSTableFormat.magic else { throw corrupt("bad magic number \(magic)") }
        guard crc == CRC32C.checksum(Array(bytes[0..<52])) else { throw corrupt("footer checksum mismatch") }
        guard version == SSTableFormat.version else { throw corrupt("unsupported format version \(version)") }
        let footer = SSTableFooter(
            filter: BlockHandle(offset: fields[0], size: fields[1]),
            index: BlockHandle(offset: fields[2], size: fields[3]),
            metadata: BlockHandle(offset: fields[4], size: fields[5]))
        // Sections are contiguous: data | filter | index | metadata | footer.
        let end = fileSize - UInt64(SSTableFormat.footerSize)
        let trailer = UInt64(SSTableFormat.trailerSize)
        guard footer.filter.size >= trailer, footer.index.size >= trailer, footer.metadata.size >= trailer,
            footer.filter.offset <= end, footer.filter.size <= end - footer.filter.offset,
            footer.index.offset == footer.filter.offset + footer.filter.size,
            footer.index.size <= end - footer.index.offset,
            footer.metadata.offset == footer.index.offset + footer.index.size,
            footer.metadata.offset + footer.metadata.size == end
        else { throw corrupt("section handles out of bounds or out of order") }
        return footer
    }
}

/// Encodes and decodes the sparse index section.
enum IndexSection {
    static func encode(_ entries: [IndexEntry], into writer: inout ByteWriter) {
        writer.write(varint: UInt64(entries.count))
        for entry in entries {
            writer.write(littleEndian: entry.lastToken)
            writer.write(lengthPrefixed: entry.lastKey)
            writer.write(varint: entry.handle.offset)
            writer.write(varint: entry.handle.size)
        }
    }

    /// Decodes and validates: blocks are contiguous from offset 0 to `dataEnd`, each at
    /// least 8 bytes, and their last keys strictly ascend.
    static func decode(_ payload: [UInt8], dataEnd: UInt64, path: String, offset: Int64) throws(KVError) -> [IndexEntry] {
        func corrupt(_ reason: String) -> KVError { .corruption(path: path, offset: offset, reason: reason) }
        do {
            return try payload.withUnsafeBytes { raw throws -> [IndexEntry] in
                var reader = ByteReader(raw)
                let count = try reader.readVarint()
                // Each entry takes ≥ 11 bytes, so a count beyond that is corrupt (and bounded).
                guard count <= UInt64(raw.count / 11 + 1) else { throw corrupt("index count \(count) too large") }
                var entries: [IndexEntry] = []
                entries.reserveCapacity(Int(count))
                var expectedOffset: UInt64 = 0
                for _ in 0..<count {
                    let token = try reader.read(littleEndian: UInt64.self)
                    let key = try reader.readLengthPrefixed()
                    let handle = BlockHandle(offset: try reader.readVarint(), size: try reader.readVarint())
                    guard handle.offset == expectedOffset, handle.size >= 8, handle.size <= dataEnd - handle.offset
                    else { throw corrupt("index block handle out of place") }
                    if let previous = entries.last,
                        compareTokenKey(previous.lastToken, previous.lastKey, token, key) >= 0
                    {
                        throw corrupt("index keys not ascending")
                    }
                    expectedOffset = handle.offset + handle.size
                    entries.append(IndexEntry(lastToken: token, lastKey: key, handle: handle))
                }
                guard expectedOffset == dataEnd, reader.isAtEnd else { throw corrupt("index does not cover the data") }
                return entries
            }
        } catch let error as ByteReader.Error {
            throw corrupt("index malformed: \(error)")
        } catch let error as KVError {
            throw error
        } catch {
            throw corrupt("index malformed")
        }
    }
}

/// Three-way comparison in the engine's (token, key) order.
func compareTokenKey(_ tokenA: UInt64, _ keyA: [UInt8], _ tokenB: UInt64, _ keyB: [UInt8]) -> Int {
    if tokenA != tokenB { return tokenA < tokenB ? -1 : 1 }
    return keyA.withUnsafeBytes { a in keyB.withUnsafeBytes { b in compareBytes(a, b) } }
}

/// Three-way bytewise comparison (shorter prefix first).
@inline(__always)
func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let common = min(a.count, b.count)
    if common > 0, let pa = a.baseAddress, let pb = b.baseAddress {
        let c = memcmp(pa, pb, common)
        if c != 0 { return c < 0 ? -1 : 1 }
    }
    return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
}

/// Appends the CRC32C of everything written so far (the section trailer).
func appendTrailer(to writer: inout ByteWriter, from start: Int) {
    let crc = writer.bytes.withUnsafeBytes { raw in
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[start...]))
    }
    writer.write(littleEndian: crc)
}

/// Verifies a section's CRC trailer and returns its payload.
func verifiedPayload(_ bytes: [UInt8], path: String, offset: Int64, what: String) throws(KVError) -> [UInt8] {
    guard bytes.count >= SSTableFormat.trailerSize else {
        throw .corruption(path: path, offset: offset, reason: "\(what) shorter than its checksum")
    }
    let payloadCount = bytes.count - SSTableFormat.trailerSize
    let (stored, actual) = bytes.withUnsafeBytes { raw in
        (
            UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: payloadCount, as: UInt32.self)),
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<payloadCount]))
        )
    }
    guard stored == actual else {
        throw .corruption(path: path, offset: offset, reason: "\(what) checksum mismatch")
    }
    return Array(bytes[0..<payloadCount])
}

/// `withUnsafeBytes` that keeps a typed error (the standard one `rethrows` as `any Error`).
@inline(__always)
func withBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeBytes { raw in
        do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}
