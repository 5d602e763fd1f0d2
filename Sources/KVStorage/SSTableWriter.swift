#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// Streams entries, in strictly ascending `(token, key)` order, into a new SSTable.
///
/// Bytes go to `path + ".tmp"`; `finish()` writes the filter, index, metadata and
/// footer, fsyncs the file and renames it to `path`. The caller then fsyncs the
/// directory (the engine's `DiskDirectory.sync`) to make the new name durable; until
/// then a crash may leave no file, never a partial one under `path`. Memory held:
/// one block, the sparse index, and 8 bytes per key for the bloom filter.
/// Not thread-safe (one owner).
public final class SSTableWriter {
    /// The final path of the table.
    public let path: String
    /// The temporary path written until `finish()`.
    public let temporaryPath: String
    private let settings: TableSettings
    private var fd: Int32
    private var block: BlockBuilder
    private var output = ByteWriter(capacity: 1 << 18)
    /// Bytes handed to the file so far (flushed or buffered).
    public private(set) var bytesWritten: UInt64 = 0
    private var index: [IndexEntry] = []
    private var tokens: [Token] = []
    private var blockLast: (UInt64, [UInt8])?
    private var isDone = false
    /// The running summary of what was appended.
    public private(set) var metadata: SSTableMetadata

    /// Creates `path.tmp` (replacing a stale one). `createdAtMillis` is recorded in the metadata.
    public init(path: String, settings: TableSettings = .default, createdAtMillis: UInt64) throws(KVError) {
        self.path = path
        self.temporaryPath = path + ".tmp"
        self.settings = settings
        self.metadata = SSTableMetadata(createdAtMillis: createdAtMillis)
        self.block = BlockBuilder(capacity: settings.blockSizeBytes)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "create", path: temporaryPath, errno: errno) }
    }

    deinit {
        if !isDone { abandon() }
    }

    /// Number of entries appended.
    public var entryCount: UInt64 { metadata.entryCount }

    /// Appends one entry. Throws `.invalidArgument` if it does not follow the previous
    /// entry in `(token, key)` order (equal keys are rejected too).
    public func append(_ entry: Entry) throws(KVError) {
        precondition(!isDone, "append after finish")
        if let last = blockLast ?? index.last.map({ ($0.lastToken, $0.lastKey) }),
            compareTokenKey(last.0, last.1, entry.token.rawValue, entry.key.bytes) >= 0
        {
            throw .invalidArgument("SSTable entries out of order at key \(entry.key)")
        }
        block.add(entry)
        blockLast = (entry.token.rawValue, entry.key.bytes)
        tokens.append(entry.token)
        metadata.include(entry)
        if block.estimatedSize >= settings.blockSizeBytes { try flushBlock() }
    }

    /// Appends every entry of `source`.
    public func append(contentsOf source: inout some SortedEntrySource) throws(KVError) {
        while let entry = try source.next() { try append(entry) }
    }

    /// Writes the remaining sections, fsyncs, closes and renames into place.
    /// Returns the table's metadata; the file's size is `bytesWritten` afterwards.
    /// Cost: the filter, index and metadata writes, one fsync and one rename.
    @discardableResult
    public func finish() throws(KVError) -> SSTableMetadata {
        precondition(!isDone, "finish called twice")
        do throws(KVError) {
            try flushBlock()
            var sections = ByteWriter(capacity: tokens.count * settings.bloomBitsPerKey / 8 + 1024)
            let dataEnd = bytesWritten
            let filter = BloomFilter(tokens: tokens, bitsPerKey: settings.bloomBitsPerKey)
            sections.write(bytes: filter.serialized)
            appendTrailer(to: &sections, from: 0)
            let filterHandle = BlockHandle(offset: dataEnd, size: UInt64(sections.count))
            let indexStart = sections.count
            IndexSection.encode(index, into: &sections)
            appendTrailer(to: &sections, from: indexStart)
            let indexHandle = BlockHandle(
                offset: filterHandle.offset + filterHandle.size, size: UInt64(sections.count - indexStart))
            let metaStart = sections.count
            metadata.blockCount = UInt64(index.count)
            metadata.encode(into: &sections)
            appendTrailer(to: &sections, from: metaStart)
            let metaHandle = BlockHandle(
                offset: indexHandle.offset + indexHandle.size, size: UInt64(sections.count - metaStart))
            sections.write(
                bytes: SSTableFooter(filter: filterHandle, index: indexHandle, metadata: metaHandle).encoded())
            try emit(sections.bytes)
            try flushOutput()
            guard fsync(fd) == 0 else { throw KVError.io(operation: "fsync", path: temporaryPath, errno: errno) }
            guard close(fd) == 0 else { throw KVError.io(operation: "close", path: temporaryPath, errno: errno) }
            fd = -1
            guard rename(temporaryPath, path) == 0 else {
                throw KVError.io(operation: "rename", path: temporaryPath, errno: errno)
            }
            isDone = true
            tokens = []
            return metadata
        } catch {
            abandon()
            throw error
        }
    }

    /// Closes and deletes the temporary file; the writer is unusable afterwards.
    public func abandon() {
        isDone = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
    }

    private func flushBlock() throws(KVError) {
        guard !block.isEmpty, let last = blockLast else { return }
        let bytes = block.finish()
        index.append(
            IndexEntry(lastToken: last.0, lastKey: last.1, handle: BlockHandle(offset: bytesWritten, size: UInt64(bytes.count))))
        blockLast = nil
        try emit(bytes)
    }

    private func emit(_ bytes: [UInt8]) throws(KVError) {
        output.write(bytes: bytes)
        bytesWritten += UInt64(bytes.count)
        if output.count >= 1 << 18 { try flushOutput() }
    }

    private func flushOutput() throws(KVError) {
        guard output.count > 0 else { return }
        try DurableFile.writeAll(fd, output.bytes, path: temporaryPath)
        output.removeAll()
    }
}
