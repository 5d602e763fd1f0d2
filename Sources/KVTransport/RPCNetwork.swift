import KVRuntime

/// Where a node listens for RPC: an IPv4 host and a port. In the in-memory network the
/// pair is just a name.
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// An incoming request (or one-way message) as a handler sees it.
public struct RPCRequest: Sendable {
    /// The operation, as the caller's protocol numbers it.
    public var method: UInt16
    public var payload: [UInt8]

    public init(method: UInt16, payload: [UInt8]) {
        self.method = method
        self.payload = payload
    }
}

/// Answers a request with the response payload; a thrown error travels back as
/// `TransportError.remote(message)`. For one-way messages the result is dropped.
/// It runs on the caller's executor (`nonisolated(nonsending)`): on the connection's loop.
public typealias RPCHandler = nonisolated(nonsending) @Sendable (RPCRequest) async throws -> [UInt8]

/// Which request methods a server answers inline, in the connection's read loop, rather
/// than in a task of their own. Inline saves a task and two executor hops per request
/// (about 10 % of a replica write's CPU), but the next frame on that connection waits for
/// it: say yes only for methods whose handler never waits on anything slow (a memtable
/// insert on this loop, say), never for ones that wait on an fsync or another node.
public typealias RPCInlinePolicy = @Sendable (_ method: UInt16) -> Bool

/// A network nodes join to exchange framed RPC messages. Implemented by `TCPNetwork`
/// (real sockets) and `InMemoryNetwork` (one process, with fault injection), with the same
/// frames and the same errors, so cluster code and its tests do not know which they use.
public protocol RPCNetwork: Sendable {
    /// Starts serving `address` (port 0: any free port) with `handler` and returns the
    /// node's endpoint, whose `address` is the one actually bound.
    func join(_ address: NodeAddress, handler: @escaping RPCHandler) async throws(TransportError) -> any RPCEndpoint

    /// `join(_:handler:)`, answering the methods `runsInline` picks inline (a network may
    /// run every request as a task anyway: the in-memory one does).
    func join(_ address: NodeAddress, handler: @escaping RPCHandler, runsInline: @escaping RPCInlinePolicy)
        async throws(TransportError) -> any RPCEndpoint
}

extension RPCEndpoint {
    /// `start` as a task that awaits `call` (preferring the caller's event loop, if any).
    public func start(
        _ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration,
        completion: @escaping @Sendable (Result<[UInt8], TransportError>) -> Void
    ) async {
        Task(executorPreference: EventLoop.current?.taskExecutor) {
            do throws(TransportError) {
                completion(.success(try await self.call(peer, method: method, payload: payload, timeout: timeout)))
            } catch {
                completion(.failure(error))
            }
        }
    }
}

extension RPCNetwork {
    /// Every request runs as a task of its own.
    public func join(_ address: NodeAddress, handler: @escaping RPCHandler) async throws(TransportError)
        -> any RPCEndpoint
    {
        try await join(address, handler: handler, runsInline: { _ in false })
    }
}

/// A node's attachment to an `RPCNetwork`: it serves incoming requests and sends its own.
public protocol RPCEndpoint: AnyObject, Sendable {
    /// The address peers reach this node at.
    var address: NodeAddress { get }

    /// Sends a request to `peer` and waits for its response, at most `timeout`.
    /// Throws `.timedOut` (no answer in time), `.connectionRefused`/`.unreachable` (peer
    /// down, or reconnecting after failures), `.connectionReset` (connection lost with the
    /// request in flight), `.remote` (the peer's handler failed), `.closed` (this endpoint closed).
    func call(_ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration) async throws(TransportError)
        -> [UInt8]

    /// Sends a request and returns once it is on its way; `completion` gets what `call`
    /// would have returned, exactly once, at most `timeout` later. For callers that
    /// collect several answers without a task per request.
    func start(
        _ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration,
        completion: @escaping @Sendable (Result<[UInt8], TransportError>) -> Void
    ) async

    /// Sends a one-way message (no response, no delivery guarantee).
    func send(_ peer: NodeAddress, method: UInt16, payload: [UInt8]) async throws(TransportError)

    /// Stops serving and sending; in-flight calls fail with `.closed`.
    func close() async
}

/// Settings of node-to-node RPC (the `[rpc]` table of a node's configuration).
public struct RPCSettings: Sendable, Equatable {
    /// Largest frame accepted or sent (the `length` field). Default 16 MiB.
    public var maxFrameBytes: Int
    /// Delay before the first reconnect attempt after a failed connect. Default 50 ms.
    public var reconnectInitialDelay: Duration
    /// Longest delay between reconnect attempts (the delay doubles per failure). Default 5 s.
    public var reconnectMaxDelay: Duration
    /// How long `close()` lets in-flight incoming requests finish. Default 2 s.
    public var shutdownGracePeriod: Duration
    /// Socket settings of RPC connections. Default: `TCPSettings` with no idle timeout
    /// (peer connections stay open while idle).
    public var tcp: TCPSettings

    public init(
        maxFrameBytes: Int = 16 << 20,
        reconnectInitialDelay: Duration = .milliseconds(50),
        reconnectMaxDelay: Duration = .seconds(5),
        shutdownGracePeriod: Duration = .seconds(2),
        tcp: TCPSettings = TCPSettings(idleTimeout: nil)
    ) {
        self.maxFrameBytes = maxFrameBytes
        self.reconnectInitialDelay = reconnectInitialDelay
        self.reconnectMaxDelay = reconnectMaxDelay
        self.shutdownGracePeriod = shutdownGracePeriod
        self.tcp = tcp
    }
}
