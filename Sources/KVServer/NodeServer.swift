import Glibc
import KVCluster
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
    /// The storage engines (or the cluster node) could not be opened.
    case storage(KVError)

    public var description: String {
        switch self {
        case .listen(let service, let error): return "\(service) listener: \(error)"
        case .storage(let error): return "storage: \(error)"
        }
    }
}

/// A running kvd: the service — a `SingleNode` (shards, replication 1) or, with
/// `[cluster] enabled`, a cluster `Node` behind a `ClusterService` — plus the HTTP and
/// RESP listeners in front of it, all on one `EventLoopGroup`.
///
/// ```swift
/// let server = try await NodeServer.start(settings: settings, logger: logger)
/// async let served: Void = server.run()   // returns after shutdown completes
/// …
/// server.shutdown()                        // from a signal handler, a test, …
/// await served
/// ```
///
/// A cluster node that is decommissioned (`POST /api/v1/cluster/decommission`) refuses
/// client requests once it has left (503), keeps answering the decommission's progress
/// for `DecommissionSettings.exitDelayMillis`, then shuts the server down by itself
/// (`run()` returns: `kvd serve` exits 0).
///
/// Shutdown is graceful: the listeners stop accepting, idle connections close at
/// once, connections in the middle of a request finish it (their response says
/// `Connection: close`) within `shutdownGraceMillis`, then every engine is closed
/// (WAL synced) and, when the server created it, the loop group stops.
public final class NodeServer: Sendable {
    public let settings: ServerSettings
    /// The single node, when not in cluster mode.
    public let node: SingleNode?
    /// The cluster service, in cluster mode.
    public let cluster: ClusterService?
    public let group: EventLoopGroup
    public let counters: ServerCounters
    /// The bound HTTP port (the kernel's pick when configured as 0).
    public let httpPort: Int
    /// The bound RESP port, or nil when RESP is disabled.
    public let respPort: Int?
    private let ownsGroup: Bool
    private let httpListener: TCPListener
    private let respListener: TCPListener?
    let tracker = ConnectionTracker()
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    /// The cluster node, in cluster mode.
    public var clusterNode: Node? { cluster?.node }

    private init(
        settings: ServerSettings, node: SingleNode?, cluster: ClusterService?, group: EventLoopGroup, ownsGroup: Bool,
        httpListener: TCPListener, respListener: TCPListener?, counters: ServerCounters, logger: Logger
    ) {
        self.settings = settings
        self.node = node
        self.cluster = cluster
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
    /// `settings.runtime` when nil) — as a single node, or with `settings.cluster.enabled`
    /// as a cluster node joined to `network` (default: TCP on `group`) — and binds the
    /// listeners. Serving starts with `run()`. `wallClock` is the time base of
    /// timestamps and expiries (tests pass their own).
    public static func start(
        settings: ServerSettings, group existing: EventLoopGroup? = nil,
        wallClock: any WallClock = SystemWallClock(), logger: Logger, network: (any RPCNetwork)? = nil
    ) async throws(ServerError) -> NodeServer {
        let group = existing ?? EventLoopGroup(settings: settings.runtime)
        var single: SingleNode?
        var cluster: ClusterService?
        do throws(KVError) {
            if settings.cluster.enabled {
                let node = try await Node.start(
                    settings: settings.clusterNodeSettings(shards: group.loops.count), network: network ?? TCPNetwork(group: group, logger: logger),
                    loops: group.loops, wallClock: wallClock, logger: logger)
                cluster = ClusterService(node: node, limits: settings.limits)
            } else {
                single = try await SingleNode.open(
                    dataDirectory: settings.dataDirectory, loops: group.loops, storage: settings.effectiveStorage(shards: group.loops.count),
                    wallClock: wallClock, logger: logger)
            }
        } catch {
            if existing == nil { group.shutdown() }
            throw .storage(error)
        }
        let close: @Sendable () async -> Void = { [single, cluster] in
            await single?.close()
            await cluster?.node.close()
        }
        let http: TCPListener
        var resp: TCPListener?
        do throws(TransportError) {
            http = try TCPListener.bind(host: settings.bindHost, port: settings.http.port, group: group, settings: settings.transport, logger: logger)
        } catch {
            await close()
            if existing == nil { group.shutdown() }
            throw .listen(service: "HTTP", error)
        }
        if settings.resp.enabled {
            do throws(TransportError) {
                resp = try TCPListener.bind(host: settings.bindHost, port: settings.resp.port, group: group, settings: settings.transport, logger: logger)
            } catch {
                http.shutdown(gracePeriod: .zero)
                await close()
                if existing == nil { group.shutdown() }
                throw .listen(service: "RESP", error)
            }
        }
        let counters = ServerCounters(startedAtMillis: wallClock.nowMillis())
        let server = NodeServer(
            settings: settings, node: single, cluster: cluster, group: group, ownsGroup: existing == nil,
            httpListener: http, respListener: resp, counters: counters, logger: logger)
        let respText = resp.map { ", RESP on \(settings.bindHost):\($0.localPort)" } ?? ""
        let clusterText = cluster.map { " as cluster node \($0.node.id) (RPC \($0.node.rpcAddress))" } ?? ""
        logger.info("kvd serving HTTP on \(settings.bindHost):\(http.localPort)\(respText) with \(group.loops.count) event loops and shards\(clusterText)")
        return server
    }

    /// Serves connections until `shutdown()` has finished: listeners closed, every
    /// handler returned, engines closed, and the loop group stopped if owned.
    public func run() async {
        if let node {
            await serve(node, clusterStatus: nil, decommission: nil)
            await node.close()
        } else if let cluster {
            // The node's loops (gossip, hints) run beside the listeners; cancelling them closes the node.
            // The node's run ends by itself once it has left the cluster: the server then follows.
            let exitDelay = Duration.milliseconds(Int64(cluster.node.settings.cluster.decommission.exitDelayMillis))
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    await cluster.node.run()
                    guard cluster.node.hasLeft else { return }
                    cluster.stopAccepting()
                    self.logger.notice("node \(cluster.node.id) has left its cluster; the server stops")
                    try? await Task.sleep(for: exitDelay)
                    self.shutdown()
                }
                await serve(
                    cluster, clusterStatus: { await cluster.describe() }, decommission: DecommissionAPI(node: cluster.node))
                cluster.stopAccepting()
                tasks.cancelAll()
            }
        }
        if ownsGroup { group.shutdown() }
        logger.info("kvd stopped")
    }

    /// Runs the HTTP and RESP listeners over `service` until they are shut down.
    private func serve<Service: KeyValueService>(
        _ service: Service, clusterStatus: (@Sendable () async -> [UInt8])?, decommission: DecommissionAPI?
    ) async {
        var api = ItemAPI(service: service)
        api.clusterStatus = clusterStatus
        api.decommission = decommission
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
            commands: RESPCommands(service: service, counters: counters, serverInfo: info), settings: settings.resp,
            counters: counters, tracker: tracker)
        let httpListener = self.httpListener
        let respListener = self.respListener
        await withDiscardingTaskGroup { group in
            group.addTask { await httpListener.run { connection in await http.serve(connection) } }
            if let respListener {
                group.addTask { await respListener.run { connection in await resp.serve(connection) } }
            }
        }
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
