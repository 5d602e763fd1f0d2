import CKVSystem
import Glibc
import KVRuntime

/// A non-blocking TCP connection owned by one event loop: every system call on it runs on
/// that loop's thread, driven by edge-triggered epoll.
///
/// `read` and `write` are async and run on the caller's executor
/// (`NonisolatedNonsendingByDefault`): a handler running on the connection's loop (task
/// preference `loop.taskExecutor`) does the syscall inline and suspends only on `EAGAIN`.
/// Called from elsewhere they hop to the loop (a cross-thread message each).
///
/// Writes are buffered and sent at the end of the loop's turn, all bytes queued on the
/// connection during the turn in one `send` (see `EventLoop.atEndOfTurn`); once more than `writeBufferLimitBytes` are waiting for the kernel,
/// `write` suspends the writer until the buffer drains below it (back-pressure). One reader
/// at a time; any number of writers (their bytes go out in call order).
///
/// Call `close()` (or `abort()`) when done: until then the loop keeps the connection
/// registered, and with it the socket. `TCPListener.run` closes a connection when its
/// handler returns.
public final class TCPConnection: @unchecked Sendable, IOReadinessHandler, LoopTurnHandler {
    // Unchecked Sendable: all mutable state below is touched only on `loop`'s thread.
    // The state of the read and write paths is `@exclusivity(unchecked)`: one thread, and
    // no access stays open across a call that could reach the same property (a consumer's
    // callback touches the write queue, never `scratch` or the read state it runs under),
    // so the runtime's access bookkeeping (several calls per request) only costs time.

    /// The loop that owns the socket.
    public let loop: EventLoop
    public let settings: TCPSettings
    /// The local port of the socket.
    public let localPort: Int

    @exclusivity(unchecked) private var fd: Int32
    @exclusivity(unchecked) private var registration: IORegistration?
    @exclusivity(unchecked) private var failure: TransportError?
    @exclusivity(unchecked) private var peerFinished = false
    /// False once `recv` found the receive queue empty (EAGAIN, or fewer bytes than asked),
    /// until epoll reports new input: a read then waits without a wasted `recv`
    /// (edge-triggered epoll reports every arrival after that point).
    @exclusivity(unchecked) private var mayHaveInput = true
    /// True once epoll reported a hangup or error: a FIN may then be pending with no further
    /// edge to announce it, so only EAGAIN (not a short read) proves the socket drained.
    @exclusivity(unchecked) private var hangupSeen = false
    @exclusivity(unchecked) private var closing = false
    private var lingerTimer: LoopTimer?

    /// A suspended reader, and how it takes its bytes.
    private enum ReadWaiter {
        /// A reader on this loop: resumed with the count of bytes left for it in `scratch`.
        case inScratch(UnsafeContinuation<Result<Int, TransportError>, Never>)
        /// A reader on another thread: resumed with a copy.
        case copied(UnsafeContinuation<Result<[UInt8], TransportError>, Never>)
        /// A reader on this loop whose consumer takes each arrival in place (see
        /// `read(handingTo:)`): resumed with the byte count of the arrival it declined.
        case consuming(UnsafeContinuation<Result<Int, TransportError>, Never>, any TCPInputConsumer)
    }

    /// The suspended reader. Unchecked continuations (no per-read canary allocation): it is
    /// resumed exactly once, by whoever takes it out of this property first, on the loop thread.
    @exclusivity(unchecked) private var readWaiter: ReadWaiter?
    @exclusivity(unchecked) private var readMaxBytes = 0
    /// Where `recv` writes; owned by the connection, used only on the loop thread.
    @exclusivity(unchecked) private var scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// True while received bytes in `scratch` wait for the reader on this loop to take them:
    /// no `recv` may overwrite them (a second reader fails with `.concurrentRead`).
    @exclusivity(unchecked) private var scratchHeld = false
    /// The idle timer of waiting reads. It is armed once and re-armed when it fires early,
    /// not armed and cancelled around every read: `readDeadline` moves, the timer stays.
    @exclusivity(unchecked) private var readTimer: LoopTimer?
    /// When the timer fires (monotonic nanoseconds); meaningful while `readTimer` is set.
    private var readTimerDeadline: UInt64 = 0
    /// When the waiting read times out (monotonic nanoseconds); `UInt64.max`: never.
    @exclusivity(unchecked) private var readDeadline = UInt64.max
    /// The waiting read's timeout in nanoseconds: a consuming read moves its deadline by it
    /// on every arrival, since it waits across many of them.
    private var readTimeoutNanos: UInt64 = 0
    /// Arrivals one readiness event hands to a consumer before the loop serves others.
    private static var consumedReadsPerEvent: Int { 16 }

    private var connectWaiter: CheckedContinuation<Result<Void, TransportError>, Never>?
    private var connectTarget = (host: "", port: 0)
    private var connectTimer: LoopTimer?

    @exclusivity(unchecked) private var writeQueue = WriteQueue()
    /// True while the loop holds this connection for an end-of-turn flush.
    @exclusivity(unchecked) private var flushScheduled = false
    private struct WriteWaiter {
        let id: UInt64
        let continuation: CheckedContinuation<Result<Void, TransportError>, Never>
        let timer: LoopTimer?
    }
    @exclusivity(unchecked) private var writeWaiters: [WriteWaiter] = []
    private var nextWaiterID: UInt64 = 0
    private var closeCallbacks: [() -> Void] = []

    init(fd: Int32, loop: EventLoop, settings: TCPSettings) {
        self.fd = fd
        self.loop = loop
        self.settings = settings
        localPort = Int(kv_socket_local_port(fd))
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        scratch.deallocate()
    }

    /// Opens a connection to `host:port` (an IPv4 address or `localhost`) owned by `loop`.
    public static func connect(
        host: String, port: Int, on loop: EventLoop, settings: TCPSettings = TCPSettings()
    ) async throws(TransportError) -> TCPConnection {
        kv_ignore_sigpipe()
        let address = try IPv4Host.normalize(host)
        var inProgress: Int32 = 0
        let fd = kv_tcp_connect(address, UInt16(clamping: port), &inProgress)
        guard fd >= 0 else {
            let code = errno
            throw code == ECONNREFUSED ? .connectionRefused(host: host, port: port)
                : .connectFailed(host: host, port: port, errno: code)
        }
        let connection = TCPConnection(fd: fd, loop: loop, settings: settings)
        guard inProgress != 0 else { return connection }
        let outcome = await withCheckedContinuation { continuation in
            loop.execute { connection.startConnect(continuation, host: host, port: port) }
        }
        try outcome.get()
        return connection
    }

    // MARK: Reading

    /// Reads up to `maxBytes` (default `settings.readChunkBytes`); returns `[]` at end of stream.
    /// Waits at most `timeout` (default `settings.idleTimeout`) for a byte; on expiry the
    /// connection is closed and `.timedOut` thrown. Costs one `recv` when data is ready.
    public func read(maxBytes: Int? = nil, timeout: Duration? = nil) async throws(TransportError) -> [UInt8] {
        let limit = max(1, maxBytes ?? settings.readChunkBytes)
        if loop.inEventLoop {
            return try await withReceivedBytes(limit: limit, timeout: timeout) { Array($0) }
        }
        let wait = timeout ?? settings.idleTimeout
        let outcome = await withUnsafeContinuation { continuation in
            loop.execute { self.startRead(.copied(continuation), maxBytes: limit, timeout: wait) }
        }
        return try outcome.get()
    }

    /// Reads what is available (up to `maxBytes`) and hands it to `body`, straight from the
    /// receive buffer on the connection's loop (a parser appends it to its own buffer: no
    /// array in between, one allocation and one copy fewer per read). Returns the byte
    /// count, 0 at end of stream. Same waiting rules as `read(maxBytes:timeout:)`; the
    /// bytes are valid only inside `body`.
    public func read(
        maxBytes: Int? = nil, timeout: Duration? = nil, into body: (UnsafeRawBufferPointer) -> Void
    ) async throws(TransportError) -> Int {
        let limit = max(1, maxBytes ?? settings.readChunkBytes)
        if loop.inEventLoop {
            return try await withReceivedBytes(limit: limit, timeout: timeout) { bytes in
                body(bytes)
                return bytes.count
            }
        }
        let bytes = try await read(maxBytes: limit, timeout: timeout)
        bytes.withUnsafeBytes(body)
        return bytes.count
    }

    /// On the loop thread: waits for input in `scratch` and calls `body` with it (empty at
    /// end of stream), then frees `scratch` for the next `recv`.
    private func withReceivedBytes<R>(
        limit: Int, timeout: Duration?, _ body: (UnsafeRawBufferPointer) -> R
    ) async throws(TransportError) -> R {
        let count: Int
        if readWaiter == nil, let ready = attemptRead(maxBytes: limit) {
            count = try ready.get()
        } else {
            let wait = timeout ?? settings.idleTimeout
            let outcome = await withUnsafeContinuation { continuation in
                startRead(.inScratch(continuation), maxBytes: limit, timeout: wait)
            }
            count = try outcome.get()
        }
        guard count > 0 else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        // A reader that was on this loop resumes on it (its task prefers the loop, or its
        // actor runs there). Should one not, the bytes are copied out on the loop instead.
        guard loop.inEventLoop else {
            let copy = await withUnsafeContinuation { continuation in
                loop.execute { continuation.resume(returning: self.takeScratch(count) { Array($0) }) }
            }
            return copy.withUnsafeBytes(body)
        }
        return takeScratch(count, body)
    }

    /// Calls `body` with the first `count` bytes of `scratch` and frees it. Loop thread only.
    private func takeScratch<R>(_ count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        defer { scratchHeld = false }
        return body(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
    }

    /// Waits for input and hands every arrival to `consumer` on the loop thread as it comes,
    /// without waking the calling task, for as long as the consumer takes them (returns true).
    /// Returns the byte count of the arrival it declined (its bytes were handed over too),
    /// 0 at end of stream. A protocol that can often answer at once (a Redis-style command
    /// that needs no wait) serves it from the readiness event itself: no task switch, no job.
    ///
    /// Call it on the connection's loop (where `TCPListener` runs handlers). `timeout`
    /// (default `settings.idleTimeout`) bounds the wait for each arrival, not the whole call.
    /// It may also return after an arrival the consumer took; the caller then calls again.
    public func read(
        handingTo consumer: any TCPInputConsumer, maxBytes: Int? = nil, timeout: Duration? = nil
    ) async throws(TransportError) -> Int {
        precondition(loop.inEventLoop, "read(handingTo:) runs on the connection's loop")
        let limit = max(1, maxBytes ?? settings.readChunkBytes)
        // Input already here is handed over before the task suspends.
        while readWaiter == nil, let ready = attemptRead(maxBytes: limit) {
            let count = try ready.get()
            if count == 0 || !takeScratch(count, { consumer.consume($0, from: self) }) { return count }
        }
        let wait = timeout ?? settings.idleTimeout
        let outcome = await withUnsafeContinuation { continuation in
            startRead(.consuming(continuation, consumer), maxBytes: limit, timeout: wait)
        }
        return try outcome.get()
    }

    /// Reads exactly `count` bytes (several reads if needed); throws `.closed` if the stream
    /// ends first.
    public func read(exactly count: Int, timeout: Duration? = nil) async throws(TransportError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let appended = try await read(appendingTo: &bytes, maxBytes: count - bytes.count, timeout: timeout)
            if appended == 0 { throw .closed }
        }
        return bytes
    }

    /// Reads what is available (up to `maxBytes`) and appends it to `buffer`; returns how many
    /// bytes were appended, 0 at end of stream. Same waiting rules as `read(maxBytes:timeout:)`;
    /// saves a copy for parsers that keep their own buffer.
    public func read(appendingTo buffer: inout [UInt8], maxBytes: Int? = nil, timeout: Duration? = nil)
        async throws(TransportError) -> Int
    {
        try await read(maxBytes: maxBytes, timeout: timeout) { buffer.append(contentsOf: $0) }
    }

    /// One `recv` on the loop thread into the per-connection `scratch` buffer: how many bytes
    /// arrived there (the reader then holds `scratch` until it takes them; 0 at end of
    /// stream), an error, or nil for EAGAIN. Readers copy out only what arrived, so a small
    /// request does not hold a `readChunkBytes` allocation.
    private func attemptRead(maxBytes: Int) -> Result<Int, TransportError>? {
        if let failure { return .failure(failure) }
        if scratchHeld { return .failure(.concurrentRead) }
        if peerFinished { return .success(0) }
        ensureRegistered()
        guard mayHaveInput else { return nil }
        if scratch.count < maxBytes {
            scratch.deallocate()
            scratch = .allocate(byteCount: max(maxBytes, settings.readChunkBytes), alignment: 16)
        }
        var n: Int
        repeat {
            // Unsafe: recv writes at most `maxBytes` bytes into scratch, which holds at least that many.
            n = kv_recv(fd, scratch.baseAddress, maxBytes)
        } while n < 0 && errno == EINTR
        if n > 0 {
            // A short read took everything queued at that moment, and any later arrival brings
            // a new edge: the next read waits for it instead of paying a `recv` for EAGAIN.
            // Not after a hangup edge: a FIN already reported may still be pending, and no
            // new edge would announce it.
            if n < maxBytes && !hangupSeen { mayHaveInput = false }
            scratchHeld = true
            return .success(n)
        }
        if n == 0 {
            peerFinished = true
            return .success(0)
        }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK {
            mayHaveInput = false
            return nil
        }
        let error: TransportError = code == ECONNRESET || code == EPIPE ? .connectionReset : .io(operation: "recv", errno: code)
        finishClose(error)
        return .failure(error)
    }

    private func startRead(_ waiter: ReadWaiter, maxBytes: Int, timeout: Duration?) {
        guard readWaiter == nil else {
            deliver(.failure(.concurrentRead), to: waiter)
            return
        }
        if let ready = attemptRead(maxBytes: maxBytes) {
            deliver(ready, to: waiter)
            return
        }
        readWaiter = waiter
        readMaxBytes = maxBytes
        guard let timeout else {
            readDeadline = .max
            return
        }
        let now = kv_monotonic_nanos()
        readTimeoutNanos = Self.nanoseconds(timeout)
        readDeadline = now &+ readTimeoutNanos
        // An armed timer due no later than the new deadline re-arms itself when it fires.
        if readTimer == nil || readTimerDeadline > readDeadline {
            readTimer?.cancel()
            armReadTimer(now: now)
        }
    }

    /// Schedules the idle timer for `readDeadline`. When it fires it closes the connection if
    /// a read is still waiting past its deadline, re-arms for a later deadline, and otherwise
    /// lapses (the next waiting read arms it again).
    private func armReadTimer(now: UInt64) {
        readTimerDeadline = readDeadline
        let delay = Duration.nanoseconds(Int64(clamping: readDeadline &- min(now, readDeadline)))
        readTimer = loop.scheduleOnLoop(after: delay) { [self] in
            readTimer = nil
            guard readWaiter != nil, readDeadline != .max else { return }
            let now = kv_monotonic_nanos()
            if now >= readDeadline {
                finishClose(.timedOut(operation: "read"))
            } else {
                armReadTimer(now: now)
            }
        }
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }

    private func resumeReader() {
        if case .consuming(let continuation, let consumer)? = readWaiter {
            feed(consumer, resuming: continuation)
            return
        }
        guard readWaiter != nil, let ready = attemptRead(maxBytes: readMaxBytes) else { return }
        // attemptRead may have closed the connection (and resumed the waiter) already.
        guard let waiter = readWaiter else { return }
        readWaiter = nil
        // The idle timer stays armed: it finds no waiting read (or a later deadline) when it fires.
        deliver(ready, to: waiter)
    }

    /// Hands arrivals to the waiting read's consumer while it takes them; resumes the reader
    /// when it declines one, at end of stream or on failure. Once the socket is drained the
    /// read stays waiting, and the next readiness event feeds it again.
    private func feed(
        _ consumer: any TCPInputConsumer, resuming continuation: UnsafeContinuation<Result<Int, TransportError>, Never>
    ) {
        for _ in 0..<Self.consumedReadsPerEvent {
            guard let ready = attemptRead(maxBytes: readMaxBytes) else { return }
            // attemptRead may have closed the connection (and resumed the reader) already.
            guard readWaiter != nil else { return }
            if case .success(let count) = ready, count > 0 {
                if readDeadline != .max { readDeadline = kv_monotonic_nanos() &+ readTimeoutNanos }
                let takesMore = takeScratch(count) { consumer.consume($0, from: self) }
                // The consumer's writes may have failed the connection, resuming the reader.
                guard readWaiter != nil else { return }
                if takesMore { continue }
            }
            readWaiter = nil
            continuation.resume(returning: ready)
            return
        }
        // Full reads one after another: let the loop serve others, then go on.
        loop.execute { self.resumeReader() }
    }

    /// Resumes `waiter` with the outcome of `attemptRead`: the bytes stay in `scratch` for a
    /// reader on this loop; another thread's reader gets a copy, and `scratch` is free again.
    private func deliver(_ outcome: Result<Int, TransportError>, to waiter: ReadWaiter) {
        switch waiter {
        case .inScratch(let continuation):
            continuation.resume(returning: outcome)
        case .copied(let continuation):
            continuation.resume(returning: outcome.map { count in count == 0 ? [] : takeScratch(count) { Array($0) } })
        case .consuming(let continuation, let consumer):
            // The bytes go to the consumer; the reader returns and, if it wants more, reads again.
            if case .success(let count) = outcome, count > 0 { _ = takeScratch(count) { consumer.consume($0, from: self) } }
            continuation.resume(returning: outcome)
        }
    }

    // MARK: Writing

    /// Queues `bytes` for sending and returns once they are sent or buffered; suspends while
    /// the buffer holds more than `settings.writeBufferLimitBytes` (up to `settings.writeTimeout`).
    /// Throws `.connectionReset` if the peer went away, `.closed` after `close()`.
    public func write(_ bytes: [UInt8]) async throws(TransportError) {
        if loop.inEventLoop {
            try enqueue(bytes)
            try await waitUntilWritable()
            return
        }
        // Off the loop: one hop that queues the bytes and waits for room.
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, TransportError>, Never>) in
            loop.execute {
                if let failure = self.failure {
                    continuation.resume(returning: .failure(failure))
                } else if self.closing {
                    continuation.resume(returning: .failure(.closed))
                } else {
                    self.enqueueWrite(bytes)
                    self.waitForRoom(continuation)
                }
            }
        }
        try outcome.get()
    }

    /// `write`, recycling buffers: queues the bytes of `buffer` and leaves it empty, holding
    /// the storage of an earlier write that has been sent when there is one. A handler that
    /// fills one reply buffer per request then allocates none in steady state (with
    /// `write(_:)` followed by `removeAll(keepingCapacity:)`, the queued array was still
    /// shared, so every reply allocated a new buffer).
    public func write(recycling buffer: inout [UInt8]) async throws(TransportError) {
        guard loop.inEventLoop else {
            try await write(buffer)
            buffer.removeAll(keepingCapacity: true)
            return
        }
        try enqueue(recycling: &buffer)
        try await waitUntilWritable()
    }

    /// `enqueue` with the buffer recycling of `write(recycling:)`: queues the bytes of
    /// `buffer` without waiting for room and leaves it empty, holding the storage of a sent
    /// write when there is one. For a `TCPInputConsumer`, which must not wait: it checks
    /// `isWritableNow` and leaves the waiting to its task. Loop thread only.
    public func enqueue(recycling buffer: inout [UInt8]) throws(TransportError) {
        precondition(loop.inEventLoop, "enqueue(recycling:) is for the connection's loop")
        if let failure { throw failure }
        if closing { throw .closed }
        guard !buffer.isEmpty else { return }
        var chunk = writeQueue.takeSpare()
        swap(&chunk, &buffer)
        enqueueWrite(chunk)
        if let failure { throw failure }
    }

    /// Queues `bytes` for sending without waiting for room (no back-pressure): for callers
    /// that must not suspend between queueing and bookkeeping (RPC). Bytes from one thread go
    /// out in call order. The bytes leave at the end of the loop's current turn, together with
    /// everything else queued on the connection in that turn (one `send`); on the loop thread
    /// a failure already known is thrown.
    public func enqueue(_ bytes: [UInt8]) throws(TransportError) {
        guard loop.inEventLoop else {
            loop.execute { if self.failure == nil && !self.closing { self.enqueueWrite(bytes) } }
            return
        }
        if let failure { throw failure }
        if closing { throw .closed }
        enqueueWrite(bytes)
        if let failure { throw failure }
    }

    /// Bytes queued and not yet taken by the kernel. Exact on the loop thread.
    public var bufferedBytes: Int { writeQueue.byteCount }

    /// Returns once at most `settings.writeBufferLimitBytes` are buffered (at once if so);
    /// throws if the connection fails or the wait exceeds `settings.writeTimeout`.
    /// On the loop thread: whether a write may be queued now (no failure, buffer under its
    /// limit), so `waitUntilWritable` would return at once. False off the loop.
    public var isWritableNow: Bool {
        loop.inEventLoop && failure == nil && writeQueue.byteCount <= settings.writeBufferLimitBytes
    }

    public func waitUntilWritable() async throws(TransportError) {
        if loop.inEventLoop {
            if let failure { throw failure }
            if writeQueue.byteCount <= settings.writeBufferLimitBytes { return }
        }
        let outcome = await withCheckedContinuation { continuation in
            if loop.inEventLoop {
                waitForRoom(continuation)
            } else {
                loop.execute { self.waitForRoom(continuation) }
            }
        }
        try outcome.get()
    }

    /// Queues `bytes` (loop thread) and asks the loop for a flush at the end of its turn: every
    /// frame written during one turn (replies of many requests, requests of many callers)
    /// leaves in one `send`.
    private func enqueueWrite(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        ensureRegistered()
        if failure != nil { return }
        writeQueue.append(bytes)
        if !flushScheduled {
            flushScheduled = true
            loop.atEndOfTurn(self)
        }
    }

    public func loopTurnEnded() {
        flushScheduled = false
        if failure == nil, !writeQueue.isEmpty { flush() }
    }

    private func waitForRoom(_ continuation: CheckedContinuation<Result<Void, TransportError>, Never>) {
        if let failure {
            continuation.resume(returning: .failure(failure))
            return
        }
        if writeQueue.byteCount <= settings.writeBufferLimitBytes {
            continuation.resume(returning: .success(()))
            return
        }
        nextWaiterID += 1
        let id = nextWaiterID
        let timer = settings.writeTimeout.map { timeout in
            loop.scheduleOnLoop(after: timeout) { [self] in
                guard writeWaiters.contains(where: { $0.id == id }) else { return }
                finishClose(.timedOut(operation: "write"))
            }
        }
        writeWaiters.append(WriteWaiter(id: id, continuation: continuation, timer: timer))
    }

    /// Sends buffered bytes until the kernel buffer is full (EAGAIN) or the queue is empty:
    /// one `send` for everything queued when the kernel takes it all.
    private func flush() {
        while !writeQueue.isEmpty {
            // Unsafe: sends from the queue's unsent bytes, valid for the duration of the call.
            let n = writeQueue.withUnsentBytes { raw in kv_send(fd, raw.baseAddress!, raw.count) }
            if n > 0 {
                writeQueue.consume(n)
                continue
            }
            let code = errno
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) { break }
            finishClose(code == EPIPE || code == ECONNRESET ? .connectionReset : .io(operation: "send", errno: code))
            return
        }
        if writeQueue.byteCount <= settings.writeBufferLimitBytes, !writeWaiters.isEmpty {
            let waiters = writeWaiters
            writeWaiters.removeAll()
            for waiter in waiters {
                waiter.timer?.cancel()
                waiter.continuation.resume(returning: .success(()))
            }
        }
        if closing && writeQueue.isEmpty { finishClose(nil) }
    }

    // MARK: Connecting

    private func startConnect(
        _ continuation: CheckedContinuation<Result<Void, TransportError>, Never>, host: String, port: Int
    ) {
        connectWaiter = continuation
        connectTarget = (host, port)
        ensureRegistered()
        connectTimer = loop.scheduleOnLoop(after: settings.connectTimeout) { [self] in
            connectTimer = nil
            completeConnect(.failure(.timedOut(operation: "connect to \(host):\(port)")))
        }
        // The socket may have connected before it was registered: check now as well.
        checkConnected()
    }

    private func checkConnected() {
        guard connectWaiter != nil else { return }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&pfd, 1, 0) > 0 else { return }
        let code = kv_socket_error(fd)
        if code == 0 {
            completeConnect(.success(()))
        } else {
            let (host, port) = connectTarget
            let error: TransportError = switch code {
            case ECONNREFUSED: .connectionRefused(host: host, port: port)
            case ECONNRESET: .connectionReset
            default: .connectFailed(host: host, port: port, errno: code)
            }
            completeConnect(.failure(error))
        }
    }

    private func completeConnect(_ outcome: Result<Void, TransportError>) {
        guard let waiter = connectWaiter else { return }
        connectWaiter = nil
        connectTimer?.cancel()
        connectTimer = nil
        if case .failure(let error) = outcome { finishClose(error) }
        waiter.resume(returning: outcome)
    }

    // MARK: Closing

    /// Closes the connection once buffered bytes are sent (at most `settings.closeLinger`,
    /// then it is reset). Waiting readers get `.closed`. Safe from any thread; repeatable.
    public func close() {
        guard loop.inEventLoop else {
            loop.execute { self.close() }
            return
        }
        guard failure == nil, !closing else { return }
        closing = true
        if !writeQueue.isEmpty { flush() }
        if failure != nil { return }
        if writeQueue.isEmpty {
            finishClose(nil)
        } else {
            lingerTimer = loop.scheduleOnLoop(after: settings.closeLinger) { [self] in
                abortNow()
            }
        }
    }

    /// Resets the connection at once (RST), dropping buffered bytes. Safe from any thread.
    public func abort() {
        guard loop.inEventLoop else {
            loop.execute { self.abortNow() }
            return
        }
        abortNow()
    }

    private func abortNow() {
        guard failure == nil, fd >= 0 else { return }
        _ = kv_socket_abort_on_close(fd)
        finishClose(.closed)
    }

    /// True once the connection is closed (locally, by error or by timeout). Loop thread only.
    var isClosed: Bool { failure != nil }

    /// Runs `body` on the loop once the connection closes (at once if it already has).
    func onClose(_ body: @escaping () -> Void) {
        if failure != nil { body() } else { closeCallbacks.append(body) }
    }

    /// Releases the socket and fails every waiter with `error` (`.closed` when nil).
    private func finishClose(_ error: TransportError?) {
        guard failure == nil else { return }
        let reason = error ?? .closed
        failure = reason
        if let registration { loop.deregister(registration) }
        registration = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        writeQueue.removeAll()
        // Bytes a reader has yet to take stay until it takes them (or the connection goes away).
        if !scratchHeld {
            scratch.deallocate()
            scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        }
        lingerTimer?.cancel()
        readTimer?.cancel()
        readTimer = nil
        if let waiter = readWaiter {
            readWaiter = nil
            deliver(.failure(reason), to: waiter)
        }
        let waiters = writeWaiters
        writeWaiters.removeAll()
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .failure(reason))
        }
        if connectWaiter != nil { completeConnect(.failure(reason)) }
        let callbacks = closeCallbacks
        closeCallbacks.removeAll()
        for callback in callbacks { callback() }
    }

    // MARK: Readiness

    private func ensureRegistered() {
        guard registration == nil, failure == nil, fd >= 0 else { return }
        do {
            registration = try loop.register(
                fd: fd, events: [.readable, .writable, .readHangup, .edgeTriggered], handler: self)
        } catch {
            switch error {
            case .loopStopped: finishClose(.closed)
            case .registrationFailed(_, let code): finishClose(.io(operation: "epoll_ctl", errno: code))
            }
        }
    }

    public func ioReady(_ events: IOEvents) {
        if connectWaiter != nil { checkConnected() }
        if !events.isDisjoint(with: [.readable, .readHangup, .hangup, .error]) {
            mayHaveInput = true
            if !events.isDisjoint(with: [.readHangup, .hangup, .error]) { hangupSeen = true }
            resumeReader()
        }
        if !events.isDisjoint(with: [.writable, .error, .hangup]), !writeQueue.isEmpty { flush() }
    }

    public func loopClosing() {
        registration = nil
        finishClose(.closed)
    }
}

/// Takes a connection's input on its loop thread as it arrives (`TCPConnection.read(handingTo:)`):
/// a protocol handler that answers what it can in place and leaves the rest to its task.
public protocol TCPInputConsumer: AnyObject {
    /// Takes `bytes` just received on `connection` (valid only during the call), on the
    /// connection's loop thread. Returns true to go on taking input this way, false to wake
    /// the task waiting in `read(handingTo:)`. It may queue writes (`enqueue`), not wait.
    func consume(_ bytes: UnsafeRawBufferPointer, from connection: TCPConnection) -> Bool
}
