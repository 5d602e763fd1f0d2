/// Size limits on client data. Loaded from the `[limits]` table of a config file.
public struct Limits: Sendable, Equatable {
    /// Largest key accepted, in bytes. Default 1024 (1 KiB).
    public var maxKeyBytes: Int
    /// Largest value accepted, in bytes. Default 1,048,576 (1 MiB).
    public var maxValueBytes: Int

    public init(maxKeyBytes: Int = 1024, maxValueBytes: Int = 1 << 20) {
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
    }

    /// The defaults: 1 KiB keys, 1 MiB values.
    public static let `default` = Limits()

    /// Throws unless `key` is non-empty and within `maxKeyBytes`.
    @inlinable public func check(key: Key) throws(KVError) { try check(keyByteCount: key.bytes.count) }

    /// Throws unless a key of `keyByteCount` bytes is non-empty and within `maxKeyBytes`.
    @inlinable public func check(keyByteCount: Int) throws(KVError) {
        if keyByteCount == 0 { throw .emptyKey }
        if keyByteCount > maxKeyBytes { throw .keyTooLarge(size: keyByteCount, limit: maxKeyBytes) }
    }

    /// Throws unless `value` is within `maxValueBytes`.
    @inlinable public func check(value: Value) throws(KVError) { try check(valueByteCount: value.bytes.count) }

    /// Throws unless a value of `valueByteCount` bytes is within `maxValueBytes`.
    @inlinable public func check(valueByteCount: Int) throws(KVError) {
        if valueByteCount > maxValueBytes { throw .valueTooLarge(size: valueByteCount, limit: maxValueBytes) }
    }
}
