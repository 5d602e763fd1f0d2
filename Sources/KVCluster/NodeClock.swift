import KVCore
import Synchronization

/// A node's hybrid logical clock and the wall clock it follows, shared by the
/// coordinator (which stamps writes) and the replica side (which merges the
/// timestamps it receives). One lock-protected value; every call is O(1).
///
/// Clock skew: a timestamp more than `maxForwardDriftMillis` ahead of this node's wall
/// clock is **rejected** (`KVError.clockSkew`), never clamped: clamping would make
/// replicas store different timestamps for one write. So a node whose clock runs far
/// ahead gets its writes refused by every healthy replica (its coordinated writes fail
/// with `quorumNotReached`), and coordinators with sane clocks ignore replies carrying
/// such timestamps (see `Coordinator`).
public final class NodeClock: Sendable {
    /// The wall clock (injected in tests to simulate skew).
    public let wall: any WallClock
    /// How far ahead of the wall clock a received timestamp may be, in milliseconds.
    public let maxForwardDriftMillis: UInt64
    private let hlc: Mutex<HybridLogicalClock>

    public init(wall: any WallClock, maxForwardDriftMillis: UInt64, last: Timestamp = .zero) {
        self.wall = wall
        self.maxForwardDriftMillis = maxForwardDriftMillis
        self.hlc = Mutex(HybridLogicalClock(maxForwardDriftMillis: maxForwardDriftMillis, last: last))
    }

    /// Wall-clock milliseconds since the Unix epoch.
    public func nowMillis() -> UInt64 { wall.nowMillis() }

    /// A new timestamp, greater than every one issued or received before.
    public func next() -> Timestamp {
        let wallMillis = wall.nowMillis()
        return hlc.withLock { $0.now(wallMillis: wallMillis) }
    }

    /// Merges a received timestamp; throws `KVError.clockSkew` when it is too far ahead.
    public func receive(_ remote: Timestamp) throws(KVError) {
        let wallMillis = wall.nowMillis()
        let result = hlc.withLock { clock in
            Result { () throws(KVError) in try clock.receive(remote, wallMillis: wallMillis) }
        }
        _ = try result.get()
    }

    /// Whether `timestamp` is within the drift bound of this node's wall clock.
    public func isAcceptable(_ timestamp: Timestamp) -> Bool {
        timestamp.physicalMillis <= wall.nowMillis() &+ maxForwardDriftMillis
    }
}
