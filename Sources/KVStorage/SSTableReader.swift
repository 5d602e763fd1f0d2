#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore
import Synchronization

/// An open, immutable SSTable: point lookups and ordered range scans.
///
/// `open` reads and verifies the footer, filter, index and metadata (each has its
/// own CRC32C) and keeps them in memory; data blocks are read on demand with
/// `pread` through the shared `BlockCache`, and each block's CRC is checked on
/// every read from disk. We use `pread` rather than `mmap` because an I/O error or
/// a file truncated underneath a mapping arrives as SIGBUS (a crash), whereas
/// `pread` returns an error we can report as `KVError`; the block cache gives the
/// memory bound that the page cache would not.
///
/// Thread-safe (`Sendable`): all state is immutable and `pread` is positional.
/// The descriptor is closed when the last reference goes away, so a table being
/// compacted away stays readable by scans that still hold it.
public final class SSTableReader: Sendable {
    /// Path the table was opened from.
    public let path: String
    /// Identity of this open table in the block cache (unique within the process).
    public let cacheID: UInt64
    /// Summary written by the writer.
    public let metadata: SSTableMetadata
    /// Size of the file in bytes.
    public let fileSizeBytes: UInt64
    let fd: Int32
    let filter: BloomFilter
    let index: [IndexEntry]
    /// `index[i].lastToken` for every block, contiguous, for the lookup's binary search.
    let indexTokens: [UInt64]
    let cache: BlockCache?
    /// This table's slots in `cache`.
    let cacheTable: BlockCache.Table?

    private static let nextCacheID = Atomic<UInt64>(1)

    private init(
        path: String, fd: Int32, fileSize: UInt64, metadata: SSTableMetadata, filter: BloomFilter,
        index: [IndexEntry], cache: BlockCache?
    ) {
        self.path = path
        self.fd = fd
        self.fileSizeBytes = fileSize
        self.metadata = metadata
        self.filter = filter
        self.index = index
        self.indexTokens = index.map(\.lastToken)
        self.cache = cache
        let id = Self.nextCacheID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.cacheID = id
        self.cacheTable = cache?.register(tableID: id, blockCount: index.count)
    }

    deinit {
        close(fd)
    }

    /// Opens and validates the table at `path`. Throws `.corruption` if the footer,
    /// magic, version or any section checksum is wrong, `.io` if the file cannot be read.
    /// Cost: one `fstat` and four reads (footer, filter, index, metadata).
    public static func open(path: String, cache: BlockCache?) throws(KVError) -> SSTableReader {
        let fd = try DurableFile.openForReading(path)
        do throws(KVError) {
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw KVError.io(operation: "fstat", path: path, errno: errno) }
            let fileSize = UInt64(info.st_size)
            guard fileSize >= UInt64(SSTableFormat.footerSize) else {
                throw KVError.corruption(path: path, offset: 0, reason: "file of \(fileSize) bytes has no footer")
            }
            let footerOffset = fileSize - UInt64(SSTableFormat.footerSize)
            let footer = try SSTableFooter.decode(
                DurableFile.readExactly(fd, offset: footerOffset, count: SSTableFormat.footerSize, path: path),
                fileSize: fileSize, path: path)
            func section(_ handle: BlockHandle, _ what: String) throws(KVError) -> [UInt8] {
                let raw = try DurableFile.readExactly(fd, offset: handle.offset, count: Int(handle.size), path: path)
                return try verifiedPayload(raw, path: path, offset: Int64(handle.offset), what: what)
            }
            let filterBytes = try section(footer.filter, "filter")
            guard let filter = BloomFilter(serialized: filterBytes) else {
                throw KVError.corruption(path: path, offset: Int64(footer.filter.offset), reason: "filter header invalid")
            }
            let index = try IndexSection.decode(
                section(footer.index, "index"), dataEnd: footer.filter.offset, path: path,
                offset: Int64(footer.index.offset))
            let metaBytes = try section(footer.metadata, "metadata")
            let metadata: SSTableMetadata
            do {
                metadata = try metaBytes.withUnsafeBytes { raw throws(ByteReader.Error) in
                    var reader = ByteReader(raw)
                    return try SSTableMetadata.decode(from: &reader)
                }
            } catch {
                throw KVError.corruption(
                    path: path, offset: Int64(footer.metadata.offset), reason: "metadata malformed: \(error)")
            }
            guard metadata.blockCount == UInt64(index.count), (metadata.entryCount == 0) == index.isEmpty else {
                throw KVError.corruption(
                    path: path, offset: Int64(footer.metadata.offset), reason: "metadata disagrees with the index")
            }
            return SSTableReader(
                path: path, fd: fd, fileSize: fileSize, metadata: metadata, filter: filter, index: index, cache: cache)
        } catch {
            close(fd)
            throw error
        }
    }

    /// True unless the bloom filter proves the key absent. No I/O.
    public func mayContain(token: Token) -> Bool {
        filter.mayContain(token)
    }

    /// The version of `key` stored here, or nil. Checks the token bounds and the bloom
    /// filter before reading at most one data block (from the cache, or one `pread`).
    public func get(key: Key, token: Token) throws(KVError) -> Record? {
        guard metadata.entryCount > 0, token >= metadata.minToken, token <= metadata.maxToken,
            filter.mayContain(token)
        else { return nil }
        let blockIndex = firstBlock(atOrAfter: token.rawValue, key: key.bytes)
        guard blockIndex < index.count else { return nil }
        let block = try block(at: blockIndex, fillCache: true)
        let (position, isMatch) = try block.lowerBound(token: token.rawValue, key: key.bytes)
        guard isMatch else { return nil }
        return try block.record(at: position)
    }

    /// An iterator over the entries with tokens in `tokens`, in order. With `fillCache`
    /// false (compaction, streaming) blocks read from disk are not added to the cache.
    public func makeIterator(
        tokens: ClosedRange<Token> = Token.min...Token.max, fillCache: Bool = true
    ) throws(KVError) -> SSTableIterator {
        var iterator = SSTableIterator(reader: self, upperToken: tokens.upperBound.rawValue, fillCache: fillCache)
        try iterator.seek(token: tokens.lowerBound, key: Key([]))
        return iterator
    }

    /// Index of the first block whose last entry is ≥ (token, key), or `index.count`.
    func firstBlock(atOrAfter token: UInt64, key: [UInt8]) -> Int {
        // The first block whose last token is ≥ the probe's, over the contiguous tokens…
        var low = 0
        var high = indexTokens.count
        indexTokens.withUnsafeBufferPointer { tokens in
            while low < high {
                let mid = (low + high) / 2
                if tokens[mid] < token { low = mid + 1 } else { high = mid }
            }
        }
        // …then, among blocks ending on that very token, the first whose last key is ≥ the
        // probe's. (`indexTokens` first: a random probe almost never ends a block, and
        // `index[low]` would be one more cache miss.)
        while low < index.count, indexTokens[low] == token,
            compareTokenKey(index[low].lastToken, index[low].lastKey, token, key) < 0
        { low += 1 }
        return low
    }

    /// Data block `i`, from the cache or verified from disk.
    func block(at i: Int, fillCache: Bool) throws(KVError) -> Block {
        if let cache, let cacheTable, let cached = cache.lookup(cacheTable, block: i) { return cached }
        let handle = index[i].handle
        let raw = try DurableFile.readExactly(fd, offset: handle.offset, count: Int(handle.size), path: path)
        let block = try Block.verifying(raw, path: path, fileOffset: Int64(handle.offset))
        if fillCache, let cache, let cacheTable { cache.insert(cacheTable, block: i, block) }
        return block
    }
}

/// Walks an SSTable in `(token, key)` order up to an inclusive token bound. Holds a
/// strong reference to the reader (the file stays open while iterating).
public struct SSTableIterator: SortedEntrySource {
    let reader: SSTableReader
    let upperToken: UInt64
    let fillCache: Bool
    private var blockIndex = 0
    private var block: Block?
    private var position = 0
    private var exhausted = false

    init(reader: SSTableReader, upperToken: UInt64, fillCache: Bool) {
        self.reader = reader
        self.upperToken = upperToken
        self.fillCache = fillCache
    }

    /// Positions at the first entry ≥ (token, key): an index binary search, one block
    /// read, and a binary search inside the block.
    public mutating func seek(token: Token, key: Key) throws(KVError) {
        exhausted = false
        blockIndex = reader.firstBlock(atOrAfter: token.rawValue, key: key.bytes)
        block = nil
        position = 0
        guard blockIndex < reader.index.count else { return }
        let loaded = try reader.block(at: blockIndex, fillCache: fillCache)
        block = loaded
        position = try loaded.lowerBound(token: token.rawValue, key: key.bytes).index
    }

    /// The next entry, or nil past the end or the token bound. Reads (and verifies) the
    /// next block from disk or the cache when the current one is used up.
    public mutating func next() throws(KVError) -> Entry? {
        while !exhausted {
            if let current = block {
                if position < current.entryCount {
                    if current.token(at: position) > upperToken {
                        exhausted = true
                        return nil
                    }
                    let entry = try current.entry(at: position)
                    position += 1
                    return entry
                }
                block = nil
                blockIndex += 1
            }
            guard blockIndex < reader.index.count else {
                exhausted = true
                return nil
            }
            block = try reader.block(at: blockIndex, fillCache: fillCache)
            position = 0
        }
        return nil
    }
}
