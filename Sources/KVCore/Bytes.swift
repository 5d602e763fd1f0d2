/// A key: an arbitrary, non-empty byte string. Ordered bytewise (shorter prefix first).
///
/// Sorted structures order records by `(Token, Key)`, not by key alone; this
/// ordering is the tie-break within a token.
public struct Key: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The key's bytes.
    public let bytes: [UInt8]

    /// Wraps bytes without checking limits (use `Limits.check(key:)` at the edge).
    @inlinable public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The UTF-8 bytes of `string`.
    @inlinable public init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The key's token on the ring (64-bit xxHash of its bytes).
    @inlinable public var token: Token { Token(hashing: bytes) }

    @inlinable public static func < (lhs: Key, rhs: Key) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public var description: String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// A value: an arbitrary byte string, possibly empty.
public struct Value: Hashable, Sendable, CustomStringConvertible {
    /// The value's bytes.
    public let bytes: [UInt8]

    @inlinable public init(_ bytes: [UInt8]) { self.bytes = bytes }
    @inlinable public init(_ string: String) { self.bytes = Array(string.utf8) }

    public var description: String { "\(bytes.count) bytes" }
}
