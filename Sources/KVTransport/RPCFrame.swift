import KVCore

/// One node-to-node message: a request, its response or failure, or a one-way message.
/// The byte layout is in `FORMAT.md` beside this file. Encoding and decoding are pure.
public struct RPCFrame: Sendable, Equatable {
    /// What the frame is.
    public enum Kind: UInt8, Sendable {
        case request = 1
        case response = 2
        case failure = 3
        case oneWay = 4
    }

    /// Bytes before the payload: length (4), kind (1), method (2), request id (8).
    public static let headerBytes = 15
    /// Bytes after the payload: the CRC32C.
    public static let trailerBytes = 4
    /// The `length` field's minimum: kind + method + request id + CRC32C.
    static let minimumLength = 15

    public var kind: Kind
    public var method: UInt16
    public var requestID: UInt64
    public var payload: [UInt8]

    public init(kind: Kind, method: UInt16, requestID: UInt64, payload: [UInt8]) {
        self.kind = kind
        self.method = method
        self.requestID = requestID
        self.payload = payload
    }

    /// Total bytes of the encoded frame.
    public var encodedCount: Int { Self.headerBytes + payload.count + Self.trailerBytes }

    /// The frame's bytes, checksum included. Costs one allocation and a CRC32C over the frame.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: encodedCount)
        encode(into: &writer)
        return writer.bytes
    }

    /// Appends the frame's bytes to `writer`.
    public func encode(into writer: inout ByteWriter) {
        let start = writer.count
        writer.write(littleEndian: UInt32(Self.minimumLength + payload.count))
        writer.write(kind.rawValue)
        writer.write(littleEndian: method)
        writer.write(littleEndian: requestID)
        writer.write(bytes: payload)
        let crc = writer.bytes.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
        writer.write(littleEndian: crc)
    }

    /// Decodes the frame at the start of `bytes`. Returns nil when `bytes` holds only part
    /// of a frame; throws when the bytes cannot be a valid frame (see FORMAT.md for the order
    /// of checks). `consumed` is the frame's size.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, maxFrameBytes: Int
    ) throws(RPCFrameError) -> (frame: RPCFrame, consumed: Int)? {
        guard bytes.count >= 4 else { return nil }
        let length = bytes.loadUnaligned(as: UInt32.self).littleEndian
        guard length >= minimumLength else { throw .lengthTooSmall(length) }
        guard Int(length) <= maxFrameBytes else { throw .frameTooLarge(length: length, limit: maxFrameBytes) }
        let total = 4 + Int(length)
        guard bytes.count >= total else { return nil }
        let body = total - trailerBytes
        let stored = bytes.loadUnaligned(fromByteOffset: body, as: UInt32.self).littleEndian
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<body]))
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
        guard let kind = Kind(rawValue: bytes[4]) else { throw .unknownKind(bytes[4]) }
        let method = bytes.loadUnaligned(fromByteOffset: 5, as: UInt16.self).littleEndian
        let requestID = bytes.loadUnaligned(fromByteOffset: 7, as: UInt64.self).littleEndian
        let payload = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[headerBytes..<body]))
        return (RPCFrame(kind: kind, method: method, requestID: requestID, payload: payload), total)
    }

    /// Decodes a buffer that must hold exactly one whole frame.
    public static func decode(_ bytes: [UInt8], maxFrameBytes: Int) throws(RPCFrameError) -> RPCFrame {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(RPCFrameError) in try decode(raw, maxFrameBytes: maxFrameBytes) }
        }
        guard let (frame, consumed) = try result.get() else {
            let needed = bytes.count >= 4
                ? 4 + Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self).littleEndian }) : 4
            throw .truncated(needed: needed, available: bytes.count)
        }
        guard consumed == bytes.count else { throw .truncated(needed: consumed, available: bytes.count) }
        return frame
    }
}

/// Splits a byte stream into frames: append what the socket returned, then take frames
/// until `next()` returns nil. Keeps at most one partial frame buffered.
public struct RPCFrameDecoder: Sendable {
    public let maxFrameBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    /// Bytes buffered that are not yet a whole frame.
    public var bufferedCount: Int { buffer.count - start }

    public mutating func append(_ bytes: [UInt8]) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65_536 && start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, or nil when more bytes are needed.
    public mutating func next() throws(RPCFrameError) -> RPCFrame? {
        let offset = start
        let limit = maxFrameBytes
        let decoded = buffer.withUnsafeBytes { raw in
            Result { () throws(RPCFrameError) in
                try RPCFrame.decode(UnsafeRawBufferPointer(rebasing: raw[offset...]), maxFrameBytes: limit)
            }
        }
        guard let (frame, consumed) = try decoded.get() else { return nil }
        start += consumed
        return frame
    }
}
