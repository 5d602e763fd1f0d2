import KVCore

/// A contiguous arc of the token ring: the tokens `t` with `start < t <= end`,
/// wrapping past `Token.max` when `start >= end`. `start == end` is the whole ring.
///
/// This is Cassandra's convention: a vnode with token `T` owns `(previous vnode's token, T]`.
public struct TokenRange: Hashable, Sendable, CustomStringConvertible {
    /// Exclusive lower bound.
    public var start: Token
    /// Inclusive upper bound.
    public var end: Token

    @inlinable public init(start: Token, end: Token) {
        self.start = start
        self.end = end
    }

    /// The whole ring, `(0, 0]`.
    public static let fullRing = TokenRange(start: .min, end: .min)

    /// True when the range crosses `Token.max` back to `Token.min` (or is the whole ring).
    @inlinable public var wraps: Bool { start >= end }

    /// True when `token` lies in the range. O(1).
    @inlinable public func contains(_ token: Token) -> Bool {
        if start < end { return start < token && token <= end }
        return token > start || token <= end
    }

    /// How many tokens the range holds (2^64 for the whole ring).
    @inlinable public var width: UInt128 {
        start == end ? UInt128(1) << 64 : UInt128(end.rawValue &- start.rawValue)
    }

    /// The share of the ring the range covers, in `0...1`.
    public var fractionOfRing: Double { Double(width) / 18_446_744_073_709_551_616.0 }

    /// The range split at `Token.max` into at most two non-wrapping pieces,
    /// the form a sorted `(token, key)` scan wants: each piece is `(lower, upper]`
    /// except that a piece starting at `Token.min` also includes `Token.min` itself,
    /// returned as `includesMin`.
    public var unwrapped: [(lower: Token, upper: Token, includesMin: Bool)] {
        if start < end { return [(start, end, false)] }
        var pieces: [(lower: Token, upper: Token, includesMin: Bool)] = []
        if start < Token.max { pieces.append((start, Token.max, false)) }
        pieces.append((Token.min, end, true))
        return pieces
    }

    /// The range as at most two closed token intervals, the form a storage scan takes
    /// (`StorageEngine.scan(tokens:)`); empty pieces are left out.
    public var closedPieces: [ClosedRange<Token>] {
        unwrapped.compactMap { piece in
            if piece.includesMin { return piece.lower...piece.upper }
            guard piece.lower < piece.upper else { return nil }
            return Token(rawValue: piece.lower.rawValue + 1)...piece.upper
        }
    }

    public var description: String { "(\(start), \(end)]" }
}
