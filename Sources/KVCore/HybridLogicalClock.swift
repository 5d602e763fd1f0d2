/// A source of wall-clock time in milliseconds since the Unix epoch. Injected so
/// that clock logic is tested without sleeping.
public protocol WallClock: Sendable {
    func nowMillis() -> UInt64
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The operating system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func nowMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

/// A hybrid logical clock (Kulkarni et al.): timestamps that follow wall time,
/// never go backwards on one node, and move past every timestamp the node has seen.
///
/// A value type: the caller owns it (typically one per node, inside an actor) and
/// passes the wall time in. Remote timestamps more than `maxForwardDriftMillis`
/// ahead of local wall time are rejected, so one node with a clock far in the
/// future cannot drag every other clock forward and make its writes win forever.
public struct HybridLogicalClock: Sendable {
    /// How far ahead of local wall time a remote timestamp may be. Default 5,000 ms.
    public var maxForwardDriftMillis: UInt64
    /// The last timestamp issued or observed.
    public private(set) var last: Timestamp

    public init(maxForwardDriftMillis: UInt64 = 5_000, last: Timestamp = .zero) {
        self.maxForwardDriftMillis = maxForwardDriftMillis
        self.last = last
    }

    /// A new timestamp for a local event: greater than every earlier one.
    public mutating func now(wallMillis: UInt64) -> Timestamp {
        let next: Timestamp
        if wallMillis > last.physicalMillis {
            next = Timestamp(physicalMillis: wallMillis, logical: 0)
        } else {
            next = Self.successor(of: last)
        }
        last = next
        return next
    }

    /// Merges a timestamp received from another node and returns a local timestamp
    /// greater than both. Throws `KVError.clockSkew` when `remote` is too far ahead.
    @discardableResult
    public mutating func receive(_ remote: Timestamp, wallMillis: UInt64) throws(KVError) -> Timestamp {
        try check(remote, wallMillis: wallMillis)
        let highest = max(last, remote)
        let next: Timestamp
        if wallMillis > highest.physicalMillis {
            next = Timestamp(physicalMillis: wallMillis, logical: 0)
        } else {
            next = Self.successor(of: highest)
        }
        last = next
        return next
    }

    /// Throws `KVError.clockSkew` when `timestamp` is more than the allowed drift ahead of `wallMillis`.
    public func check(_ timestamp: Timestamp, wallMillis: UInt64) throws(KVError) {
        if timestamp.physicalMillis > wallMillis &+ maxForwardDriftMillis {
            throw .clockSkew(
                remoteMillis: timestamp.physicalMillis, localMillis: wallMillis,
                maxDriftMillis: maxForwardDriftMillis)
        }
    }

    private static func successor(of t: Timestamp) -> Timestamp {
        if t.logical == .max {
            return Timestamp(physicalMillis: t.physicalMillis + 1, logical: 0)
        }
        return Timestamp(physicalMillis: t.physicalMillis, logical: t.logical + 1)
    }
}
