import Synchronization

/// Process-wide counters of a running server, for `INFO` and logs. Updated with
/// relaxed atomics from every loop (one uncontended atomic add per event).
public final class ServerCounters: Sendable {
    /// Connections open now (HTTP and RESP).
    public let connectedClients = Atomic<Int>(0)
    /// Connections accepted since start.
    public let connectionsReceived = Atomic<Int>(0)
    /// Connections refused because of the connection limit.
    public let connectionsRejected = Atomic<Int>(0)
    /// RESP commands answered since start.
    public let commandsProcessed = Atomic<Int>(0)
    /// HTTP requests answered since start.
    public let httpRequests = Atomic<Int>(0)
    /// Wall-clock milliseconds when the server started.
    public let startedAtMillis: UInt64

    public init(startedAtMillis: UInt64) {
        self.startedAtMillis = startedAtMillis
    }

}
