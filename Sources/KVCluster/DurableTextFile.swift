import Glibc
import KVCore

/// A small text file in a node's data directory, written atomically and durably:
/// a temp file, fsync, rename, directory fsync. For the node's own records
/// (`GenerationFile`, `DecommissionFile`), a few bytes each.
enum DurableTextFile {
    /// The first line of the file at `path`, or nil when it does not exist or is empty.
    static func firstLine(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n), as: UTF8.self).split(separator: "\n").first.map(String.init)
    }

    /// Whether a file exists at `path`.
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Replaces the file `name` in `directory` with `text` plus a newline, durably.
    static func write(_ text: String, named name: String, in directory: String) throws(KVError) {
        let path = directory + "/" + name
        let temp = path + ".tmp"
        let bytes = Array((text + "\n").utf8)
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw .io(operation: "open", path: temp, errno: errno) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count || fsync(fd) != 0 {
            let e = errno
            close(fd)
            throw .io(operation: "write", path: temp, errno: e)
        }
        close(fd)
        if rename(temp, path) != 0 { throw .io(operation: "rename", path: path, errno: errno) }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
