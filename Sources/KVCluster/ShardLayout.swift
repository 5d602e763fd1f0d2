import Glibc
import KVCore

/// The shard count recorded in a data directory (`<data-dir>/SHARDS`, one
/// decimal line). Keys are routed to shards by token range, so a directory
/// written with N shards must be opened with N shards again.
public enum ShardLayout {
    public static let fileName = "SHARDS"

    /// Creates the directory and records `shardCount` on first use; afterwards
    /// throws `KVError.invalidArgument` if the recorded count differs.
    public static func check(dataDirectory: String, shardCount: Int) throws(KVError) {
        try makeDirectories(dataDirectory)
        let path = dataDirectory + "/" + fileName
        if let existing = try readSmallFile(path) {
            let text = String(decoding: existing, as: UTF8.self).split(separator: "\n").first.map { $0.trimmingCharacters(in: " ") } ?? ""
            guard let recorded = Int(text) else {
                throw .corruption(path: path, offset: 0, reason: "expected a shard count, found '\(text)'")
            }
            guard recorded == shardCount else {
                throw .invalidArgument(
                    "\(dataDirectory) holds \(recorded) shards but the node runs \(shardCount) event loops; "
                        + "set [runtime] loops = \(recorded)")
            }
            return
        }
        try writeFileDurably(path, Array("\(shardCount)\n".utf8), directory: dataDirectory)
    }

    private static func makeDirectories(_ path: String) throws(KVError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw .io(operation: "mkdir", path: prefix, errno: errno)
            }
            prefix += "/"
        }
    }

    private static func readSmallFile(_ path: String) throws(KVError) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .io(operation: "open", path: path, errno: errno)
        }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw .io(operation: "read", path: path, errno: errno) }
        return Array(buffer.prefix(n))
    }

    /// Writes a temp file, fsyncs it, renames it into place and fsyncs the directory.
    private static func writeFileDurably(_ path: String, _ bytes: [UInt8], directory: String) throws(KVError) {
        let temp = path + ".tmp"
        let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw .io(operation: "open", path: temp, errno: errno) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            Glibc.close(fd)
            throw .io(operation: "write", path: temp, errno: errno)
        }
        if fsync(fd) != 0 {
            Glibc.close(fd)
            throw .io(operation: "fsync", path: temp, errno: errno)
        }
        Glibc.close(fd)
        if rename(temp, path) != 0 { throw .io(operation: "rename", path: path, errno: errno) }
        let dfd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            Glibc.close(dfd)
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.last == set { s = s.dropLast() }
        return s
    }
}
