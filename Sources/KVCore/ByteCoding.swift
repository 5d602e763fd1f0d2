/// Appends little-endian integers, LEB128 varints and raw bytes to a growing
/// buffer. The one encoder every kvd binary format (WAL, SSTable, manifest, RPC)
/// is written with.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable public var count: Int { bytes.count }

    public mutating func write(_ v: UInt8) { bytes.append(v) }

    public mutating func write<T: FixedWidthInteger>(littleEndian v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128: 7 bits a byte, high bit set on all but the last.
    public mutating func write(varint v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func write<C: Collection>(bytes other: C) where C.Element == UInt8 {
        bytes.append(contentsOf: other)
    }

    /// A varint length followed by the bytes.
    public mutating func write<C: Collection>(lengthPrefixed other: C) where C.Element == UInt8 {
        write(varint: UInt64(other.count))
        bytes.append(contentsOf: other)
    }

    /// Overwrites a little-endian integer at `offset` (for lengths and checksums known last).
    public mutating func patch<T: FixedWidthInteger>(littleEndian v: T, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { raw in
            for (i, b) in raw.enumerated() { bytes[offset + i] = b }
        }
    }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
    }
}

/// Reads what `ByteWriter` wrote, checking bounds: a short or malformed input is
/// a `ByteReader.Error`, never a crash.
public struct ByteReader {
    public enum Error: Swift.Error, Equatable, Sendable {
        case truncated(needed: Int, available: Int)
        case malformedVarint
    }

    public let buffer: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    @inlinable public var remaining: Int { buffer.count - offset }
    @inlinable public var isAtEnd: Bool { offset >= buffer.count }

    private func need(_ n: Int) throws(Error) {
        if n < 0 || remaining < n { throw .truncated(needed: n, available: remaining) }
    }

    public mutating func readByte() throws(Error) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return buffer[offset]
    }

    public mutating func read<T: FixedWidthInteger>(littleEndian: T.Type) throws(Error) -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        defer { offset += size }
        return T(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    public mutating func readVarint() throws(Error) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readByte()
            if shift == 63 && b > 1 { throw .malformedVarint }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .malformedVarint }
        }
    }

    /// The next `count` bytes, as a slice of the underlying buffer (no copy).
    public mutating func readSlice(count: Int) throws(Error) -> UnsafeRawBufferPointer {
        try need(count)
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
    }

    public mutating func readBytes(count: Int) throws(Error) -> [UInt8] {
        Array(try readSlice(count: count))
    }

    /// A varint length followed by that many bytes.
    public mutating func readLengthPrefixed() throws(Error) -> [UInt8] {
        let n = try readVarint()
        guard n <= UInt64(remaining) else { throw .truncated(needed: Int(clamping: n), available: remaining) }
        return try readBytes(count: Int(n))
    }

    public mutating func skip(_ count: Int) throws(Error) {
        try need(count)
        offset += count
    }
}
