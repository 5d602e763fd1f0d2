#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// A WAL segment file mapped into memory (`MAP_SHARED`), as `periodic` mode writes it:
/// a frame copied into the mapping is in the kernel's page cache at once, so it survives
/// the death of the process (`kill -9`, a crash) with no system call. Only a crash of the
/// machine loses what the last `fdatasync` did not cover: the guarantee of Redis's
/// `appendfsync everysec` and of Cassandra's periodic commit log, which maps its segments
/// the same way.
///
/// The file's blocks are reserved up front (`posix_fallocate`), so a full disk is an error
/// when the segment opens, never a `SIGBUS` on a later write into the mapping. Unwritten
/// space reads back as zeros, which recovery takes as the end of the segment. A full
/// segment is unmapped at once (`retire()`): its dirty pages stay in the page cache, and an
/// `fdatasync` of `file` still writes them, so only the segment being filled is mapped.
final class MappedSegment: @unchecked Sendable {
    // Unchecked: `offset` and the mapped bytes are written only under the WAL's lock; the
    // syncing thread touches nothing but `file` (fdatasync is safe beside writers).

    let segment: UInt64
    let file: DiskFile
    /// Bytes mapped (and reserved on disk).
    let size: Int
    /// Where the next frame goes.
    private(set) var offset: Int
    private let base: UnsafeMutableRawPointer
    private var mapped = true

    /// Maps `path` (created, or a recycled segment file renamed there) for segment
    /// `segment`, at least `size` bytes, and writes the segment header.
    init(path: String, segment: UInt64, size: Int, create: Bool) throws(KVError) {
        let file = try DiskFile(path: path, flags: create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR)
        let reserved = posix_fallocate(file.fd, 0, off_t(size))
        guard reserved == 0 else { throw .io(operation: "posix_fallocate", path: path, errno: reserved) }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0), base != MAP_FAILED else {
            throw .io(operation: "mmap", path: path, errno: errno)
        }
        self.segment = segment
        self.file = file
        self.size = size
        self.base = base
        self.offset = 0
        append(WALSegment.header(segment: segment))
    }

    deinit { retire() }

    /// Unmaps the segment; no more appends. Its frames stay in the page cache (dirty until
    /// synced through `file`). Idempotent.
    func retire() {
        guard mapped else { return }
        mapped = false
        munmap(base, size)
    }

    /// Room left for frames.
    var available: Int { size - offset }

    /// Copies `bytes` at the end of the written part; the caller checked `available`.
    func append(_ bytes: [UInt8]) {
        precondition(mapped && bytes.count <= available, "WAL frame overruns its mapped segment")
        // unsafe: offset + count ≤ size, the mapped length.
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        offset += bytes.count
    }
}
