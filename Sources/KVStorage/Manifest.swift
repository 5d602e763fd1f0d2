import KVCore

#if canImport(Glibc)
import Glibc
#endif

/// The engine's durable state outside the WAL: which SSTables are live (and at
/// which level), the next file number, and the first WAL segment whose data is
/// not yet in an SSTable.
///
/// Every change writes a complete new manifest to `MANIFEST.tmp`, syncs it,
/// renames it over `MANIFEST` and syncs the directory, so a crash leaves either
/// the old state or the new one, never a mix. Files a crash left behind (a
/// half-written SSTable, a compaction output not yet listed) are not in the
/// manifest and are deleted on open. Costs: one small file write and three syncs
/// per flush or compaction. Format: FORMAT.md, "Manifest".
struct Manifest: Sendable, Equatable {
    /// One live SSTable.
    struct Table: Sendable, Equatable, Hashable {
        /// The table's file number: its file is `Manifest.tableFileName(number)`.
        var number: UInt64
        /// Level 0 holds flushed memtables (overlapping); higher levels come from compaction.
        var level: Int
        /// The file's size in bytes.
        var sizeBytes: UInt64
    }

    /// The next number to give a new file (SSTable). Never reused.
    var nextFileNumber: UInt64 = 1
    /// The first WAL segment still needed on recovery; lower ones are obsolete.
    var walStartSegment: UInt64 = 1
    /// The next WAL sequence number (kept so numbering continues after the WAL is emptied).
    var nextSequence: UInt64 = 1
    /// Live tables, oldest first within a level (flush order).
    var tables: [Table] = []

    static let fileName = "MANIFEST"
    static let temporaryFileName = "MANIFEST.tmp"
    /// "KMAN" read as a little-endian u32.
    static let magic: UInt32 = 0x4E41_4D4B
    static let version: UInt16 = 1
    static let headerSize = 16

    /// `000000000042.sst`.
    static func tableFileName(_ number: UInt64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".sst"
    }

    /// The file number of an SSTable file name, or nil for any other name.
    static func tableNumber(fileName: String) -> UInt64? {
        guard fileName.hasSuffix(".sst") else { return nil }
        return UInt64(fileName.dropLast(4))
    }

    /// Takes a fresh file number.
    mutating func allocateFileNumber() -> UInt64 {
        defer { nextFileNumber += 1 }
        return nextFileNumber
    }

    func encode() -> [UInt8] {
        var body = ByteWriter(capacity: 64 + tables.count * 8)
        body.write(varint: nextFileNumber)
        body.write(varint: walStartSegment)
        body.write(varint: nextSequence)
        body.write(varint: UInt64(tables.count))
        for t in tables {
            body.write(varint: t.number)
            body.write(varint: UInt64(t.level))
            body.write(varint: t.sizeBytes)
        }
        var w = ByteWriter(capacity: Self.headerSize + body.count)
        w.write(littleEndian: Self.magic)
        w.write(littleEndian: Self.version)
        w.write(littleEndian: UInt16(0))
        w.write(littleEndian: UInt32(body.count))
        w.write(littleEndian: CRC32C.checksum(body.bytes))
        w.write(bytes: body.bytes)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws(KVError) -> Manifest {
        let result: Result<Manifest, KVError> = bytes.withUnsafeBytes { raw in
            func corrupt(_ reason: String) -> Result<Manifest, KVError> {
                .failure(.corruption(path: path, offset: 0, reason: reason))
            }
            var r = ByteReader(raw)
            do {
                guard try r.read(littleEndian: UInt32.self) == magic else { return corrupt("bad manifest magic") }
                guard try r.read(littleEndian: UInt16.self) == version else {
                    return corrupt("unknown manifest version")
                }
                _ = try r.read(littleEndian: UInt16.self)
                let length = Int(try r.read(littleEndian: UInt32.self))
                let crc = try r.read(littleEndian: UInt32.self)
                guard length == r.remaining else { return corrupt("manifest length \(length) ≠ \(r.remaining) bytes") }
                let body = try r.readSlice(count: length)
                guard CRC32C.checksum(body) == crc else { return corrupt("manifest checksum mismatch") }
                var b = ByteReader(body)
                var m = Manifest()
                m.nextFileNumber = try b.readVarint()
                m.walStartSegment = try b.readVarint()
                m.nextSequence = try b.readVarint()
                let count = try b.readVarint()
                guard count <= UInt64(b.remaining) else { return corrupt("manifest table count \(count) too large") }
                for _ in 0..<count {
                    let number = try b.readVarint()
                    let level = try b.readVarint()
                    let size = try b.readVarint()
                    guard level < 64 else { return corrupt("manifest level \(level) out of range") }
                    m.tables.append(Table(number: number, level: Int(level), sizeBytes: size))
                }
                guard b.isAtEnd else { return corrupt("trailing bytes in manifest") }
                return .success(m)
            } catch {
                return corrupt("truncated manifest")
            }
        }
        return try result.get()
    }

    /// Reads `directory/MANIFEST`, or returns nil when there is none (a new engine).
    static func load(directory: String) throws(KVError) -> Manifest? {
        let path = directory + "/" + fileName
        guard DiskDirectory.exists(path) else { return nil }
        let file = try DiskFile(path: path, flags: O_RDONLY)
        return try decode(try file.readAll(), path: path)
    }

    /// Replaces `directory/MANIFEST` with this state, atomically and durably.
    func write(directory: String) throws(KVError) {
        let temporary = directory + "/" + Self.temporaryFileName
        let file = try DiskFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(encode(), at: 0)
        try file.sync()
        try DiskDirectory.rename(temporary, directory + "/" + Self.fileName)
        try DiskDirectory.sync(directory)
    }
}
