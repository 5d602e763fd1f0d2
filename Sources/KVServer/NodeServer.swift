import Glibc
import KVCore
import KVRuntime
import KVStorage
import KVTransport
import Logging
import Synchronization

/// Why a server could not start.
public enum ServerError: Error, Sendable, CustomStringConvertible {
    /// A listener could not bind its port.
    case listen(service: String, TransportError)
    /// The storage engines could not be opened.
    case storage(KVError)

    public var description: String {
        switch self {
        case .listen(let service, let error): return "\(service) listener: \(error)"
        case .storage(let error): return "storage: \(error)"
        }
    }
}

/// A running single-node kvd: the `SingleNode` (shards) plus the HTTP and RESP
/// listeners in front of it, all on one `EventLoopGroup`.
///
/// ```swift
/// let server = try await NodeServer.start(settings: settings, logger: logger)
/// async let served: Void = server.run()   // returns after shutdown completes
/// …
/// server.shutdown()                        // from a signal handler, a test, …
/// await served
/// ```
///
/// Shutdown is graceful: the listeners stop accepting, idle connections close at
/// once, connections in the middle of a request finish it (their response says
/// `Connection: close`) within `shutdownGraceMillis`, then every engine is closed
/// (WAL synced) and, when the server created it, the loop group stops.
public final class NodeServer: Sendable {
    public let settings: ServerSettings
    public let node: SingleNode
    public let group: EventLoopGroup
    public let counters: ServerCounters
    /// The bound HTTP port (the kernel's pick when configured as 0).
    public let httpPort: Int
    /// The bound RESP port, or nil when RESP is disabled.
    public let respPort: Int?
    private let ownsGroup: Bool
    private let httpListener: TCPListener
    private let respListener: TCPListener?
    private let tracker = ConnectionTracker()
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    private init(
        settings: ServerSettings, node: SingleNode, group: EventLoopGroup, ownsGroup: Bool,
        httpListener: TCPListener, respListener: TCPListener?, counters: ServerCounters, logger: Logger
    ) {
        self.settings = settings
        self.node = node
        self.group = group
        self.ownsGroup = ownsGroup
        self.httpListener = httpListener
        self.respListener = respListener
        self.counters = counters
        self.logger = logger
        self.httpPort = httpListener.localPort
        self.respPort = respListener?.localPort
    }

    /// Opens the shards (one per loop of `group`, or of a new group built from
    /// `settings.runtime` when nil) and binds the listeners. Serving starts with `run()`.
    /// `wallClock` is the time base of timestamps and expiries (tests pass their own).
    public static func start(
        settings: ServerSettings, group existing: EventLoopGroup? = nil,
        wallClock: any WallClock = SystemWallClock(), logger: Logger
    ) async throws(ServerError) -> NodeServer {
        let group = existing ?? EventLoopGroup(settings: settings.runtime)
        let node: SingleNode
        do throws(KVError) {
            node = try await SingleNode.open(
                dataDirectory: settings.dataDirectory, loops: group.loops, storage: settings.effectiveStorage, wallClock: wallClock,
                logger: logger)
        } catch {
            if existing == nil { group.shutdown() }
            throw .storage(error)
        }
        let http: TCPListener
        var resp: TCPListener?
        do throws(TransportError) {
            http = try TCPListener.bind(host: settings.bindHost, port: settings.http.port, group: group, settings: settings.transport, logger: logger)
        } catch {
            await node.close()
            if existing == nil { group.shutdown() }
            throw .listen(service: "HTTP", error)
        }
        if settings.resp.enabled {
            do throws(TransportError) {
                resp = try TCPListener.bind(host: settings.bindHost, port: settings.resp.port, group: group, settings: settings.transport, logger: logger)
            } catch {
                http.shutdown(gracePeriod: .zero)
                await node.close()
                if existing == nil { group.shutdown() }
                throw .listen(service: "RESP", error)
            }
        }
        let counters = ServerCounters(startedAtMillis: node.nowMillis())
        let server = NodeServer(
            settings: settings, node: node, group: group, ownsGroup: existing == nil, httpListener: http,
            respListener: resp, counters: counters, logger: logger)
        let respText = resp.map { ", RESP on \(settings.bindHost):\($0.localPort)" } ?? ""
        logger.info("kvd serving HTTP on \(settings.bindHost):\(http.localPort)\(respText) with \(group.loops.count) event loops and shards")
        return server
    }

    /// Serves connections until `shutdown()` has finished: listeners closed, every
    /// handler returned, engines closed, and the loop group stopped if owned.
    public func run() async {
        let api = ItemAPI(service: node)
        let http = HTTPConnectionHandler(api: api, settings: settings.http, counters: counters, tracker: tracker)
        let commitMode: String
        switch settings.storage.commitMode {
        case .sync: commitMode = "sync"
        case .periodic(let ms): commitMode = "periodic(\(ms) ms)"
        }
        let info = RESPServerInfo(
            version: kvdVersion, processID: getpid(), respPort: respPort ?? 0, httpPort: httpPort,
            loops: group.loops.count, commitMode: commitMode)
        let resp = RESPConnectionHandler(
            commands: RESPCommands(service: node, counters: counters, serverInfo: info), settings: settings.resp,
            counters: counters, tracker: tracker)
        let httpListener = self.httpListener
        let respListener = self.respListener
        await withDiscardingTaskGroup { group in
            group.addTask { await httpListener.run { connection in await http.serve(connection) } }
            if let respListener {
                group.addTask { await respListener.run { connection in await resp.serve(connection) } }
            }
        }
        await node.close()
        if ownsGroup { group.shutdown() }
        logger.info("kvd stopped")
    }

    /// Begins a graceful shutdown (see the type's documentation). Safe from any
    /// thread; later calls do nothing. `run()` returns once it is complete.
    public func shutdown() {
        guard stopping.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
        logger.info("shutting down: \(tracker.count) open connections")
        let grace = Duration.milliseconds(settings.shutdownGraceMillis)
        httpListener.shutdown(gracePeriod: grace)
        respListener?.shutdown(gracePeriod: grace)
        tracker.drain()
    }
}

/// The version `INFO` and `kvd --version` report.
public let kvdVersion = "0.1.0"
