#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// An exclusive `flock` on `DIR/LOCK`, held while an engine has the directory open, so
/// two engines (in one process or two) never write the same files. The kernel drops
/// the lock when the process dies, so a crash never leaves the directory locked.
final class DirectoryLock: Sendable {
    let fd: Int32
    static let fileName = "LOCK"

    /// Takes the lock, or throws `KVError.io(operation: "flock", …)` with `EWOULDBLOCK`
    /// when another engine holds it.
    init(directory: String) throws(KVError) {
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            close(fd)
            throw .io(operation: "flock", path: path, errno: error)
        }
        self.fd = fd
    }

    deinit { close(fd) }
}
