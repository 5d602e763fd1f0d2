import Glibc
import KVCore

/// The generation of a node's last start, kept in `<data-dir>/GENERATION` (one
/// decimal line) so that a restart always gossips a larger generation than the
/// previous run, even when the wall clock went backwards.
enum GenerationFile {
    static let fileName = "GENERATION"

    /// The generation recorded in `dataDirectory`, if any.
    static func read(dataDirectory: String) -> UInt64? {
        let fd = open(dataDirectory + "/" + fileName, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return UInt64(String(decoding: buffer.prefix(n), as: UTF8.self).split(separator: "\n").first ?? "")
    }

    /// Records `generation` durably (temp file, fsync, rename, directory fsync).
    static func write(_ generation: UInt64, dataDirectory: String) throws(KVError) {
        let path = dataDirectory + "/" + fileName
        let temp = path + ".tmp"
        let bytes = Array("\(generation)\n".utf8)
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
        let dfd = open(dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
