/// Errors shared by every kvd layer. Each case says what happened and carries
/// what an operator or client needs to act on it.
public enum KVError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key is empty; kvd keys have at least one byte.
    case emptyKey
    /// The key is longer than the configured limit (`Limits.maxKeyBytes`).
    case keyTooLarge(size: Int, limit: Int)
    /// The value is longer than the configured limit (`Limits.maxValueBytes`).
    case valueTooLarge(size: Int, limit: Int)
    /// A remote timestamp is further ahead of the local wall clock than the HLC allows.
    case clockSkew(remoteMillis: UInt64, localMillis: UInt64, maxDriftMillis: UInt64)
    /// Stored bytes failed a checksum or a structural check. Never served as data.
    case corruption(path: String, offset: Int64, reason: String)
    /// Fewer replicas answered than the request's consistency level needs (HTTP 503,
    /// with both counts): retry, or read/write at a lower level.
    case quorumNotReached(needed: Int, answered: Int)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// The component was closed (or is shutting down) and takes no more requests.
    case closed
    /// Input rejected by a check that is not about size.
    case invalidArgument(String)
    /// Too much work is queued; retry later (maps to HTTP 429).
    case overloaded(String)

    public var description: String {
        switch self {
        case .emptyKey:
            return "key must not be empty"
        case let .keyTooLarge(size, limit):
            return "key is \(size) bytes; the limit is \(limit) bytes"
        case let .valueTooLarge(size, limit):
            return "value is \(size) bytes; the limit is \(limit) bytes"
        case let .clockSkew(remote, local, drift):
            return "timestamp \(remote) ms is more than \(drift) ms ahead of the local clock (\(local) ms)"
        case let .corruption(path, offset, reason):
            return "corruption in \(path) at offset \(offset): \(reason)"
        case let .io(operation, path, errno):
            return "\(operation) failed on \(path): errno \(errno)"
        case .closed:
            return "closed"
        case let .invalidArgument(message):
            return message
        case let .quorumNotReached(needed, answered):
            return "quorum not reached: \(answered) of \(needed) required replicas answered"
        case let .overloaded(message):
            return "overloaded: \(message)"
        }
    }
}
