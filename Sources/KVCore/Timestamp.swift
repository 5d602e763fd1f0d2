/// A hybrid-logical-clock timestamp: wall-clock milliseconds in the high 48 bits,
/// a logical counter in the low 16. Totally ordered; larger is newer.
public struct Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The packed 64-bit value, as stored on disk and sent on the wire.
    public let rawValue: UInt64

    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A timestamp from its parts. `physicalMillis` must fit in 48 bits.
    @inlinable public init(physicalMillis: UInt64, logical: UInt16) {
        self.rawValue = (physicalMillis << 16) | UInt64(logical)
    }

    /// Milliseconds since the Unix epoch.
    @inlinable public var physicalMillis: UInt64 { rawValue >> 16 }
    /// The logical counter, distinguishing events within one millisecond.
    @inlinable public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// The oldest possible timestamp.
    public static let zero = Timestamp(rawValue: 0)

    @inlinable public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(physicalMillis).\(logical)" }
}
