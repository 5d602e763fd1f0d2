#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// Thin, typed-error wrappers over the POSIX calls the SSTable reader and writer make:
/// open, exact-length writes, exact positional reads. (Directory operations, including
/// the fsync that makes a finished table's rename durable, are the engine's
/// `DiskDirectory`.)
enum DurableFile {
    /// Opens `path` read-only (close-on-exec).
    static func openForReading(_ path: String) throws(KVError) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(KVError) {
        var written = 0
        while written < bytes.count {
            // unsafe: writes from inside the array's buffer, bounded by its count.
            let n = bytes.withUnsafeBytes { raw in write(fd, raw.baseAddress! + written, raw.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            written += n
        }
    }

    /// Reads exactly `count` bytes at `offset`; end of file first is a corruption
    /// (the caller computed the range from the file's own metadata).
    static func readExactly(_ fd: Int32, offset: UInt64, count: Int, path: String) throws(KVError) -> [UInt8] {
        var failure: Int32 = 0
        var got = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            while got < count {
                // unsafe: reads into the uninitialised tail of the buffer, bounded by its capacity.
                let n = pread(fd, buffer.baseAddress! + got, count - got, off_t(offset) + off_t(got))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }
                got += n
            }
            initialized = got
        }
        if failure != 0 { throw .io(operation: "pread", path: path, errno: failure) }
        guard got == count else {
            throw .corruption(path: path, offset: Int64(offset), reason: "file ends \(count - got) bytes early")
        }
        return bytes
    }
}
