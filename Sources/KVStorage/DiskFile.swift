#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// An open file descriptor with the few POSIX calls the WAL and the manifest need
/// (positioned writes, `fdatasync`, preallocation). Every failure is a
/// `KVError.io` naming the call, the path and `errno`.
///
/// Not thread-safe by itself: each `DiskFile` has one owner at a time (the WAL's
/// syncing thread, or the actor writing a manifest).
final class DiskFile {
    let fd: Int32
    let path: String

    /// Opens `path` with `flags` (`O_CREAT` implies mode 0644).
    init(path: String, flags: Int32) throws(KVError) {
        let fd = open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Writes all of `bytes` at `offset` (retrying short writes and EINTR).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(KVError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pwrite", path: path, errno: errno)
            }
            done += n
        }
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws(KVError) {
        let result: Result<Void, KVError> = bytes.withUnsafeBytes { raw in
            Result { () throws(KVError) in try write(raw, at: offset) }
        }
        try result.get()
    }

    /// Flushes the file's data (and the metadata needed to read it back) to the disk.
    func syncData() throws(KVError) {
        #if canImport(Glibc)
        let rc = fdatasync(fd)
        #else
        let rc = fsync(fd)
        #endif
        if rc != 0 { throw .io(operation: "fdatasync", path: path, errno: errno) }
    }

    /// Flushes data and all metadata.
    func sync() throws(KVError) {
        if fsync(fd) != 0 { throw .io(operation: "fsync", path: path, errno: errno) }
    }

    func truncate(to length: Int64) throws(KVError) {
        if ftruncate(fd, off_t(length)) != 0 { throw .io(operation: "ftruncate", path: path, errno: errno) }
    }

    /// The file's size in bytes.
    func size() throws(KVError) -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int64(st.st_size)
    }

    /// Reads the whole file into memory.
    func readAll() throws(KVError) -> [UInt8] {
        let count = Int(try size())
        var failure: KVError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                // pread into the not-yet-initialized tail of the array's storage.
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .io(operation: "pread", path: path, errno: errno)
                    break
                }
                if n == 0 { break }
                done += n
            }
            initialized = done
        }
        if let failure { throw failure }
        return bytes
    }
}

/// Directory operations: listing, durable renames, removal.
enum DiskDirectory {
    /// Creates `path` (and parents) if missing.
    static func create(_ path: String) throws(KVError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw .io(operation: "mkdir", path: prefix, errno: errno)
            }
        }
    }

    /// The names (not paths) of the entries of `path`, excluding `.` and `..`.
    static func list(_ path: String) throws(KVError) -> [String] {
        guard let dir = opendir(path) else { throw .io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes the directory's entries (creations, renames, removals) durable.
    static func sync(_ path: String) throws(KVError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw .io(operation: "fsync", path: path, errno: errno) }
    }

    /// Atomically replaces `to` with `from` (same file system).
    static func rename(_ from: String, _ to: String) throws(KVError) {
        if systemRename(from, to) != 0 { throw .io(operation: "rename", path: from, errno: errno) }
    }

    /// Removes a file; a missing file is not an error.
    static func remove(_ path: String) throws(KVError) {
        if unlink(path) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: path, errno: errno) }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

#if canImport(Glibc)
private let systemRename = Glibc.rename
#else
private let systemRename = Darwin.rename
#endif
