import CKVSystem

/// Readiness of a file descriptor as epoll reports it, and the interest a registration asks for.
public struct IOEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Data (or a pending connection) can be read.
    public static let readable = IOEvents(rawValue: UInt32(KV_EV_IN))
    /// The send buffer has room.
    public static let writable = IOEvents(rawValue: UInt32(KV_EV_OUT))
    /// An error is pending on the socket (always reported).
    public static let error = IOEvents(rawValue: UInt32(KV_EV_ERR))
    /// Both directions are closed (always reported).
    public static let hangup = IOEvents(rawValue: UInt32(KV_EV_HUP))
    /// The peer closed its writing side.
    public static let readHangup = IOEvents(rawValue: UInt32(KV_EV_RDHUP))
    /// Report changes only (edge-triggered): the handler must read/write until `EAGAIN`.
    public static let edgeTriggered = IOEvents(rawValue: UInt32(truncatingIfNeeded: KV_EV_ET))
}

/// Receives readiness events for a descriptor registered with an `EventLoop`.
/// Every call arrives on that loop's thread.
public protocol IOReadinessHandler: AnyObject {
    /// The descriptor became ready for `events`.
    func ioReady(_ events: IOEvents)
    /// The loop is shutting down: fail whatever waits on the descriptor and close it.
    func loopClosing()
}

/// A descriptor's registration with a loop; pass it back to modify or remove the interest.
public struct IORegistration: Sendable, Hashable {
    /// The descriptor registered.
    public let fd: Int32
    /// The token epoll reports with each event (never reused within a loop).
    public let token: UInt64
}

/// A timer scheduled on an event loop. Cancelling after it fired does nothing.
public struct LoopTimer: Sendable {
    let loop: EventLoop
    let id: UInt64

    /// Stops the callback from running if it has not run yet. Safe from any thread.
    public func cancel() { loop.cancelTimer(id) }
}
