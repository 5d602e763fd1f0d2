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
    public func check(key: Key) throws(KVError) {
        if key.bytes.isEmpty { throw .emptyKey }
        if key.bytes.count > maxKeyBytes { throw .keyTooLarge(size: key.bytes.count, limit: maxKeyBytes) }
    }

    /// Throws unless `value` is within `maxValueBytes`.
    public func check(value: Value) throws(KVError) {
        if value.bytes.count > maxValueBytes {
            throw .valueTooLarge(size: value.bytes.count, limit: maxValueBytes)
        }
    }
}
