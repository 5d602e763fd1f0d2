/// Appends little-endian integers, LEB128 varints and raw bytes to a growing
/// buffer. The one encoder every kvd binary format (WAL, SSTable, manifest, RPC)
/// is written with.
public struct ByteWriter: Sendable {
    // Inlinable, so that the WAL, SSTable and RPC encoders in other modules get
    // specialized integer writes instead of generic calls through witness tables.
    @usableFromInline var storage: [UInt8]

    /// The bytes written so far.
    @inlinable public var bytes: [UInt8] { storage }

    /// An empty writer with room for `capacity` bytes before it grows.
    @inlinable public init(capacity: Int = 64) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// The number of bytes written so far.
    @inlinable public var count: Int { storage.count }

    /// Appends one byte.
    @inlinable public mutating func write(_ v: UInt8) { storage.append(v) }

    /// Appends `v` in little-endian byte order (`T.bitWidth / 8` bytes).
    @inlinable public mutating func write<T: FixedWidthInteger>(littleEndian v: T) {
        withUnsafeBytes(of: v.littleEndian) { storage.append(contentsOf: $0) }
    }

    /// Unsigned LEB128: 7 bits a byte, high bit set on all but the last.
    @inlinable public mutating func write(varint v: UInt64) {
        var v = v
        while v >= 0x80 {
            storage.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        storage.append(UInt8(v))
    }

    /// Appends the bytes of `other` as they are.
    @inlinable public mutating func write<C: Collection>(bytes other: C) where C.Element == UInt8 {
        storage.append(contentsOf: other)
    }

    /// A varint length followed by the bytes.
    @inlinable public mutating func write<C: Collection>(lengthPrefixed other: C) where C.Element == UInt8 {
        write(varint: UInt64(other.count))
        storage.append(contentsOf: other)
    }

    /// Overwrites a little-endian integer at `offset` (for lengths and checksums known last).
    @inlinable public mutating func patch<T: FixedWidthInteger>(littleEndian v: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= storage.count, "patch past the end")
        storage.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: v.littleEndian, toByteOffset: offset, as: T.self)
        }
    }

    /// Forgets the bytes written, keeping the allocation unless told otherwise.
    @inlinable public mutating func removeAll(keepingCapacity: Bool = true) {
        storage.removeAll(keepingCapacity: keepingCapacity)
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
