import Atomics
import CKVSystem
import Glibc
import KVRuntime
import Logging
import Synchronization

/// A non-blocking TCP listening socket on one event loop. Accepted connections are spread
/// round-robin over the group's loops; `run` gives each one to a handler running as a child
/// task that prefers the connection's loop, so the handler, the actors on that loop and the
/// socket's I/O share one thread.
///
/// ```swift
/// let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
/// async let served: Void = listener.run { connection in … }
/// … listener.localPort …
/// listener.shutdown(gracePeriod: .seconds(5))
/// await served
/// ```
///
/// Past `settings.maxConnections` open connections, new ones are accepted and closed at
/// once. When the process runs out of descriptors (EMFILE/ENFILE) accepting pauses for
/// `settings.acceptBackoff` instead of spinning.
public final class TCPListener: @unchecked Sendable, IOReadinessHandler {
    // Unchecked Sendable: the mutable state is touched only on `loop`'s thread; the counters
    // and the connection table are atomics or behind a lock.

    /// The loop that accepts.
    public let loop: EventLoop
    public let group: EventLoopGroup
    public let settings: TCPSettings
    /// The port the listener is bound to (the kernel's choice when bound to port 0).
    public let localPort: Int
    public let host: String

    private let logger: Logger
    private var fd: Int32
    private var registration: IORegistration?
    private var backoffTimer: LoopTimer?
    private let openCount = ManagedAtomic<Int>(0)
    private let acceptedCount = ManagedAtomic<Int>(0)
    private let refusedCount = ManagedAtomic<Int>(0)
    private let open = Mutex<[ObjectIdentifier: TCPConnection]>([:])
    private let incoming: AsyncStream<TCPConnection>
    private let incomingSink: AsyncStream<TCPConnection>.Continuation
    private let stopped = ManagedAtomic<Bool>(false)
    private let acceptAttempts = ManagedAtomic<Int>(0)
    /// accept4 on the listening socket; tests substitute one that fails with chosen errnos.
    private let acceptCall: @Sendable (Int32) -> Int32

    private init(
        fd: Int32, host: String, group: EventLoopGroup, loop: EventLoop, settings: TCPSettings, logger: Logger,
        acceptCall: @escaping @Sendable (Int32) -> Int32
    ) {
        self.fd = fd
        self.acceptCall = acceptCall
        self.host = host
        self.group = group
        self.loop = loop
        self.settings = settings
        self.logger = logger
        localPort = Int(kv_socket_local_port(fd))
        (incoming, incomingSink) = AsyncStream.makeStream(of: TCPConnection.self)
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Binds and listens on `host:port` (IPv4 or `localhost`; port 0 = ephemeral) and starts
    /// accepting on one of `group`'s loops. Connections queue until `run` takes them.
    public static func bind(
        host: String, port: Int, group: EventLoopGroup, settings: TCPSettings = TCPSettings(),
        logger: Logger = Logger(label: "kvd.transport")
    ) throws(TransportError) -> TCPListener {
        try bind(host: host, port: port, group: group, settings: settings, logger: logger) { kv_tcp_accept($0) }
    }

    /// `bind` with the accept system call supplied (tests inject EMFILE with it).
    static func bind(
        host: String, port: Int, group: EventLoopGroup, settings: TCPSettings, logger: Logger,
        acceptCall: @escaping @Sendable (Int32) -> Int32
    ) throws(TransportError) -> TCPListener {
        kv_ignore_sigpipe()
        let address = try IPv4Host.normalize(host)
        let fd = kv_tcp_listen(address, UInt16(clamping: port), Int32(clamping: settings.backlog))
        guard fd >= 0 else { throw .bindFailed(host: host, port: port, errno: errno) }
        let listener = TCPListener(
            fd: fd, host: host, group: group, loop: group.next(), settings: settings, logger: logger,
            acceptCall: acceptCall)
        listener.loop.execute { listener.startAccepting() }
        return listener
    }

    /// Open connections accepted by this listener.
    public var connectionCount: Int { openCount.load(ordering: .relaxed) }
    /// Connections accepted so far (refused ones excluded).
    public var acceptedTotal: Int { acceptedCount.load(ordering: .relaxed) }
    /// accept(2) calls made so far (a full descriptor table must not make this race upward).
    public var acceptAttemptTotal: Int { acceptAttempts.load(ordering: .relaxed) }
    /// Connections closed at once because `maxConnections` were open.
    public var refusedTotal: Int { refusedCount.load(ordering: .relaxed) }

    /// Serves one accepted connection; runs on the connection's loop thread, as the loop's
    /// task executor (and so do the `nonisolated(nonsending)` functions it calls).
    public typealias ConnectionHandler = nonisolated(nonsending) @Sendable (TCPConnection) async -> Void

    /// Serves every accepted connection with `handler`, each in a child task preferring the
    /// connection's loop; the connection is closed when its handler returns. Returns after
    /// `shutdown` once every handler has returned. Call it once.
    public func run(_ handler: @escaping ConnectionHandler) async {
        await withDiscardingTaskGroup { tasks in
            for await connection in incoming {
                tasks.addTask(executorPreference: connection.loop.taskExecutor) {
                    // Not isolated to `loop.isolation`: a read's continuation resumes on the task
                    // executor, and an actor-isolated handler then hopped to the actor, a second
                    // queued job on every wake-up (2 loop jobs per RESP request, now 1). The
                    // shard's hot calls (`StorageEngine.read`, `apply`) run in place on their
                    // loop's thread without actor isolation.
                    await handler(connection)
                    connection.close()
                }
            }
        }
    }

    /// Stops accepting and closes the listening socket at once; connections already open
    /// get `gracePeriod` to finish, then are reset (their pending reads fail with `.closed`).
    /// `run` returns when the last handler does. Safe from any thread; repeatable.
    public func shutdown(gracePeriod: Duration = .seconds(5)) {
        guard stopped.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        loop.execute {
            self.stopAccepting()
            self.incomingSink.finish()
        }
        loop.schedule(after: gracePeriod) {
            let remaining = self.open.withLock { Array($0.values) }
            for connection in remaining { connection.abort() }
        }
    }

    private func startAccepting() {
        guard !stopped.load(ordering: .acquiring), fd >= 0 else { return }
        do {
            registration = try loop.register(fd: fd, events: [.readable, .edgeTriggered], handler: self)
        } catch {
            logger.error("listener on \(host):\(localPort) cannot be registered: \(error)")
            return
        }
        acceptAll()
    }

    private func stopAccepting() {
        backoffTimer?.cancel()
        if let registration { loop.deregister(registration) }
        registration = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Accepts until EAGAIN (edge-triggered), pausing on descriptor exhaustion.
    private func acceptAll() {
        while fd >= 0 {
            acceptAttempts.wrappingIncrement(ordering: .relaxed)
            let client = acceptCall(fd)
            if client < 0 {
                let code = errno
                switch code {
                case EAGAIN, EWOULDBLOCK:
                    return
                case EINTR, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    logger.warning("accept on port \(localPort) paused: out of descriptors or memory (errno \(code))")
                    backoffTimer = loop.scheduleOnLoop(after: settings.acceptBackoff) { [self] in
                        backoffTimer = nil
                        acceptAll()
                    }
                    return
                default:
                    logger.error("accept on port \(localPort) failed: errno \(code)")
                    return
                }
            }
            admit(client)
        }
    }

    private func admit(_ client: Int32) {
        if openCount.load(ordering: .relaxed) >= settings.maxConnections {
            refusedCount.wrappingIncrement(ordering: .relaxed)
            _ = kv_socket_abort_on_close(client)
            Glibc.close(client)
            return
        }
        openCount.wrappingIncrement(ordering: .relaxed)
        acceptedCount.wrappingIncrement(ordering: .relaxed)
        let target = group.next()
        let connection = TCPConnection(fd: client, loop: target, settings: settings)
        let id = ObjectIdentifier(connection)
        open.withLock { $0[id] = connection }
        target.execute {
            connection.onClose {
                self.open.withLock { _ = $0.removeValue(forKey: id) }
                self.openCount.wrappingDecrement(ordering: .relaxed)
            }
        }
        if case .terminated = incomingSink.yield(connection) { connection.abort() }
    }

    public func ioReady(_ events: IOEvents) {
        if backoffTimer == nil { acceptAll() }
    }

    public func loopClosing() {
        registration = nil
        stopAccepting()
        incomingSink.finish()
    }
}
