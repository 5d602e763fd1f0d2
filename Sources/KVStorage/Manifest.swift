import Synchronization
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
        try Self.write(encoded: encode(), directory: directory)
    }

    /// Replaces `directory/MANIFEST` with `bytes` (an encoded manifest): a temporary
    /// file, fsync, rename, fsync of the directory.
    static func write(encoded bytes: [UInt8], directory: String) throws(KVError) {
        let temporary = directory + "/" + temporaryFileName
        let file = try DiskFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(bytes, at: 0)
        try file.sync()
        try DiskDirectory.rename(temporary, directory + "/" + fileName)
        try DiskDirectory.sync(directory)
    }
}

/// Writes one engine's manifest file from whichever thread holds the change, so the
/// fsyncs of a flush or compaction run on the background thread, never on the shard's
/// event loop.
///
/// The engine changes its in-memory `Manifest` on its own executor and numbers each
/// state it hands out (`Update.version`). Updates may reach the file out of order (the
/// background thread and the engine's executor both write); one older than the state on
/// disk is skipped, because that newer state was derived from it and already holds its
/// change. So the file only ever moves forward, and a writer returns once a state at
/// least as new as its own is durable.
final class ManifestStore: Sendable {
    /// One numbered manifest state, encoded.
    struct Update: Sendable {
        var version: UInt64
        var bytes: [UInt8]
    }

    private let directory: String
    /// The version of the state on disk (0: the one the engine opened with).
    private let durableVersion = Mutex<UInt64>(0)

    init(directory: String) { self.directory = directory }

    /// Makes `update` (or a newer state) durable. Blocks on disk I/O: call it off the loop.
    func write(_ update: Update) throws(KVError) {
        let directory = self.directory
        try durableVersion.withLock { (durable: inout UInt64) throws(KVError) in
            guard update.version > durable else { return }
            try Manifest.write(encoded: update.bytes, directory: directory)
            durable = update.version
        }
    }
}
