import CKVSystem
import KVRuntime

/// The client side of RPC to one peer over TCP: one connection, many requests in flight on
/// it (matched by request id, answered in any order), a timeout per request, and reconnection
/// with exponential backoff after failures.
///
/// The actor runs on an event loop (that of its connection), so a caller on the same loop
/// sends and receives without leaving the thread. A request costs one frame encode, a share
/// of one `send` (the connection sends all frames queued in a loop turn together) and a
/// deadline; one sweep timer per peer, armed while requests are in flight, fails those
/// past their deadline (so a timeout fires up to `sweepInterval` late).
public actor RPCPeer {
    public let address: NodeAddress
    public let loop: EventLoop
    public let settings: RPCSettings

    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }

    /// What a response (or failure) completes.
    public typealias Completion = @Sendable (Result<[UInt8], TransportError>) -> Void

    private struct Pending {
        let complete: Completion
        /// `kv_monotonic_nanos()` after which the request fails with `.timedOut`.
        let deadline: UInt64
        let method: UInt16
        let connection: ObjectIdentifier
    }

    /// How often requests in flight are checked against their deadlines: 10 ms.
    public static let sweepInterval = Duration.milliseconds(10)
    private var sweeping = false

    private var connection: TCPConnection?
    private var connectWaiters: [CheckedContinuation<Result<TCPConnection, TransportError>, Never>] = []
    private var connecting = false
    private var readers: [ObjectIdentifier: Task<Void, Never>] = [:]
    private var pending: [UInt64: Pending] = [:]
    private var nextRequestID: UInt64 = 1
    private var backoff: ReconnectBackoff
    private var retryAt: ContinuousClock.Instant?
    private var closed = false

    public init(address: NodeAddress, loop: EventLoop, settings: RPCSettings = RPCSettings()) {
        self.address = address
        self.loop = loop
        self.settings = settings
        backoff = ReconnectBackoff(initial: settings.reconnectInitialDelay, maximum: settings.reconnectMaxDelay)
    }

    /// Requests in flight (for metrics and tests).
    public var inFlight: Int { pending.count }
    /// Whether a connection is open now.
    public var isConnected: Bool { connection != nil }

    /// Sends a request and waits for the response, at most `timeout`. Connects first if
    /// needed; while backing off after failed connects it fails fast with `.unreachable`.
    public func call(method: UInt16, payload: [UInt8], timeout: Duration) async throws(TransportError) -> [UInt8] {
        let connection = try await ready(payloadBytes: payload.count)
        let outcome = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<[UInt8], TransportError>, Never>) in
            register(method: method, payload: payload, timeout: timeout, on: connection) { continuation.resume(returning: $0) }
        }
        return try outcome.get()
    }

    /// Sends a request and returns once it is queued (after connecting, if needed);
    /// `completion` runs once, on this peer's loop, with the response or the error —
    /// at most `timeout` later. Saves the caller a task when it does not wait for this
    /// one answer (a coordinator collecting W of N acks).
    public nonisolated func start(method: UInt16, payload: [UInt8], timeout: Duration, completion: @escaping Completion) async {
        // On this peer's loop with a connection ready: queue it in place, without the two
        // executor switches of an actor call.
        if loop.inEventLoop, startInPlace(method: method, payload: payload, timeout: timeout, completion: completion) {
            return
        }
        await startWaiting(method: method, payload: payload, timeout: timeout, completion: completion)
    }

    /// `startNow`, entered synchronously: only on the loop thread (this actor's executor).
    private nonisolated func startInPlace(
        method: UInt16, payload: [UInt8], timeout: Duration, completion: @escaping Completion
    ) -> Bool {
        assumeIsolated { $0.startNow(method: method, payload: payload, timeout: timeout, completion: completion) }
    }

    /// `start` when a connection is open and writable: true once queued, false to take the slow path.
    private func startNow(method: UInt16, payload: [UInt8], timeout: Duration, completion: @escaping Completion) -> Bool {
        guard !closed, let connection, connection.isWritableNow, frameLength(payloadBytes: payload.count) <= settings.maxFrameBytes
        else { return false }
        register(method: method, payload: payload, timeout: timeout, on: connection, completion)
        return true
    }

    private func startWaiting(method: UInt16, payload: [UInt8], timeout: Duration, completion: @escaping Completion) async {
        let connection: TCPConnection
        do throws(TransportError) {
            connection = try await ready(payloadBytes: payload.count)
        } catch {
            completion(.failure(error))
            return
        }
        register(method: method, payload: payload, timeout: timeout, on: connection, completion)
    }

    /// The `length` field of a frame carrying `payloadBytes` (everything after the field itself).
    private nonisolated func frameLength(payloadBytes: Int) -> Int {
        RPCFrame.headerBytes + payloadBytes + RPCFrame.trailerBytes - 4
    }

    /// A connection that can take a frame of `payloadBytes` now.
    private func ready(payloadBytes: Int) async throws(TransportError) -> TCPConnection {
        let length = frameLength(payloadBytes: payloadBytes)
        guard length <= settings.maxFrameBytes else {
            throw .badFrame(.frameTooLarge(length: UInt32(clamping: length), limit: settings.maxFrameBytes))
        }
        let connection = try await connected()
        try await connection.waitUntilWritable()
        return connection
    }

    /// Queues the request frame and arms its timeout.
    private func register(
        method: UInt16, payload: [UInt8], timeout: Duration, on connection: TCPConnection, _ complete: @escaping Completion
    ) {
        let id = nextRequestID
        nextRequestID &+= 1
        do throws(TransportError) {
            try connection.enqueue(RPCFrame(kind: .request, method: method, requestID: id, payload: payload).encoded())
        } catch {
            complete(.failure(error))
            return
        }
        pending[id] = Pending(
            complete: complete, deadline: kv_monotonic_nanos() &+ timeout.nanoseconds, method: method,
            connection: ObjectIdentifier(connection))
        if !sweeping { armSweep() }
    }

    /// Sends a one-way message (no response).
    public func send(method: UInt16, payload: [UInt8]) async throws(TransportError) {
        let connection = try await connected()
        try await connection.write(RPCFrame(kind: .oneWay, method: method, requestID: 0, payload: payload).encoded())
    }

    /// Closes the connection; requests in flight fail with `.closed`, later calls too.
    public func close() async {
        closed = true
        connection?.close()
        connection = nil
        failPending(.closed) { _ in true }
        let waiters = connectWaiters
        connectWaiters.removeAll()
        for waiter in waiters { waiter.resume(returning: .failure(.closed)) }
        for reader in readers.values { await reader.value }
    }

    /// Schedules one `sweep`, on this peer's loop.
    private func armSweep() {
        sweeping = true
        _ = loop.schedule(after: Self.sweepInterval) { [loop] in
            // The timer runs on the loop thread, which is this actor's executor (unless the
            // loop has stopped and a fallback runs timers elsewhere).
            if loop.inEventLoop {
                self.assumeIsolated { $0.sweep() }
            } else {
                Task { await self.sweep() }
            }
        }
    }

    /// Fails the requests past their deadline; re-arms while any remain in flight.
    private func sweep() {
        let now = kv_monotonic_nanos()
        let expired = pending.filter { $0.value.deadline <= now }
        for (id, entry) in expired {
            pending[id] = nil
            entry.complete(.failure(.timedOut(operation: "call \(entry.method) to \(address)")))
        }
        if pending.isEmpty { sweeping = false } else { armSweep() }
    }

    private func connected() async throws(TransportError) -> TCPConnection {
        if closed { throw .closed }
        if let connection { return connection }
        if let retryAt, ContinuousClock.now < retryAt {
            throw .unreachable("\(address) (reconnecting after \(backoff.failures) failed attempts)")
        }
        if connecting {
            let outcome = await withCheckedContinuation { connectWaiters.append($0) }
            return try outcome.get()
        }
        connecting = true
        let outcome: Result<TCPConnection, TransportError>
        do {
            let fresh = try await TCPConnection.connect(
                host: address.host, port: address.port, on: loop, settings: settings.tcp)
            outcome = .success(fresh)
        } catch {
            outcome = .failure(error)
        }
        connecting = false
        switch outcome {
        case .success(let fresh):
            if closed {
                fresh.close()
                throw .closed
            }
            backoff.reset()
            retryAt = nil
            connection = fresh
            let key = ObjectIdentifier(fresh)
            readers[key] = Task(executorPreference: loop.taskExecutor) { await self.readResponses(fresh) }
        case .failure:
            retryAt = ContinuousClock.now + backoff.recordFailure()
        }
        let waiters = connectWaiters
        connectWaiters.removeAll()
        for waiter in waiters { waiter.resume(returning: outcome) }
        return try outcome.get()
    }

    /// Reads frames from `connection` until it fails, resolving the requests they answer.
    private func readResponses(_ connection: TCPConnection) async {
        var decoder = RPCFrameDecoder(maxFrameBytes: settings.maxFrameBytes)
        var failure = TransportError.connectionReset
        reading: while true {
            let bytes: [UInt8]
            do {
                bytes = try await connection.read(timeout: nil)
            } catch {
                failure = error == .closed && closed ? .closed : error
                break
            }
            if bytes.isEmpty { break }
            decoder.append(bytes)
            do {
                while let frame = try decoder.next() { deliver(frame) }
            } catch {
                failure = .badFrame(error)
                connection.abort()
                break reading
            }
        }
        let key = ObjectIdentifier(connection)
        if self.connection === connection { self.connection = nil }
        connection.close()
        failPending(failure) { $0.connection == key }
        readers[key] = nil
    }

    private func deliver(_ frame: RPCFrame) {
        guard frame.kind == .response || frame.kind == .failure,
              let entry = pending.removeValue(forKey: frame.requestID)
        else { return }
        if frame.kind == .response {
            entry.complete(.success(frame.payload))
        } else {
            entry.complete(.failure(.remote(String(decoding: frame.payload, as: UTF8.self))))
        }
    }

    private func failPending(_ error: TransportError, where matches: (Pending) -> Bool) {
        let failing = pending.filter { matches($0.value) }
        for (id, entry) in failing {
            pending[id] = nil
            entry.complete(.failure(error))
        }
    }
}
