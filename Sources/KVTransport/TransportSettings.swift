/// Settings of TCP listeners and connections (the `[transport]` table of a node's configuration).
public struct TCPSettings: Sendable, Equatable {
    /// Pending connections the kernel queues before `accept`. Default 1024.
    public var backlog: Int
    /// Open connections a listener allows; beyond it new connections are accepted and closed
    /// at once. Default 10 000 connections.
    public var maxConnections: Int
    /// Most bytes one `read` returns (and allocates). Default 65 536 bytes.
    public var readChunkBytes: Int
    /// Bytes a connection buffers for sending before `write` suspends the writer until the
    /// buffer drains below it (back-pressure). Default 1 048 576 bytes.
    public var writeBufferLimitBytes: Int
    /// A read that waits this long for any byte fails with `.timedOut` and closes the
    /// connection. `nil`: wait forever. Default 300 s.
    public var idleTimeout: Duration?
    /// A writer suspended by back-pressure this long fails with `.timedOut` and the connection
    /// is closed. `nil`: wait forever. Default 30 s.
    public var writeTimeout: Duration?
    /// How long `connect` waits for the peer. Default 5 s.
    public var connectTimeout: Duration
    /// How long `close()` keeps flushing buffered bytes before it resets the connection. Default 5 s.
    public var closeLinger: Duration
    /// Pause before accepting again after the process ran out of descriptors (EMFILE/ENFILE),
    /// so a full table does not spin the loop. Default 100 ms.
    public var acceptBackoff: Duration

    public init(
        backlog: Int = 1024,
        maxConnections: Int = 10_000,
        readChunkBytes: Int = 65_536,
        writeBufferLimitBytes: Int = 1_048_576,
        idleTimeout: Duration? = .seconds(300),
        writeTimeout: Duration? = .seconds(30),
        connectTimeout: Duration = .seconds(5),
        closeLinger: Duration = .seconds(5),
        acceptBackoff: Duration = .milliseconds(100)
    ) {
        self.backlog = backlog
        self.maxConnections = maxConnections
        self.readChunkBytes = readChunkBytes
        self.writeBufferLimitBytes = writeBufferLimitBytes
        self.idleTimeout = idleTimeout
        self.writeTimeout = writeTimeout
        self.connectTimeout = connectTimeout
        self.closeLinger = closeLinger
        self.acceptBackoff = acceptBackoff
    }
}
