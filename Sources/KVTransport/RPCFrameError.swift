/// Why bytes received on an RPC connection are not a valid frame. The connection that
/// carried them is closed: its byte stream can no longer be trusted.
public enum RPCFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length field is below the smallest possible frame.
    case lengthTooSmall(UInt32)
    /// The length field exceeds the configured maximum frame size.
    case frameTooLarge(length: UInt32, limit: Int)
    /// The CRC32C stored in the frame does not match its contents.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The kind byte is not one this version knows.
    case unknownKind(UInt8)
    /// The input ended in the middle of a frame.
    case truncated(needed: Int, available: Int)

    public var description: String {
        switch self {
        case .lengthTooSmall(let length): return "frame length \(length) is below the 15-byte minimum (kind, method, request id, CRC32C)"
        case let .frameTooLarge(length, limit): return "frame length \(length) exceeds the limit of \(limit) bytes"
        case let .checksumMismatch(stored, computed):
            return "CRC32C mismatch: stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16))"
        case .unknownKind(let kind): return "unknown frame kind \(kind)"
        case let .truncated(needed, available): return "frame truncated: needs \(needed) bytes, \(available) available"
        }
    }
}
