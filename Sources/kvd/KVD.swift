import ArgumentParser
import Dispatch
import Glibc
import KVCluster
import KVServer
import Logging
import Synchronization

/// The kvd command line.
@main
struct KVD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd",
        abstract: "kvd: a leaderless, Dynamo-style distributed key-value store.",
        version: kvdVersion,
        subcommands: [Serve.self, Dev.self, Decommission.self])
}

/// `kvd serve`: runs one node — alone, or as a cluster member — until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one kvd node serving the HTTP API and RESP (a cluster member with [cluster] or the cluster flags).")

    @Option(name: .long, help: "TOML configuration file (see Configs/single.toml). Without it, defaults apply.")
    var config: String?

    @Option(name: .long, help: "Data directory (overrides [node] data_dir).")
    var dataDir: String?

    @Option(name: .long, help: "HTTP port; 0 picks a free one (overrides [http] port).")
    var httpPort: Int?

    @Option(name: .long, help: "RESP port; 0 picks a free one (overrides [resp] port).")
    var respPort: Int?

    @Option(name: .long, help: "Cluster node id (overrides [cluster] node_id; turns cluster mode on).")
    var nodeId: String?

    @Option(name: .long, help: "Node-to-node RPC port; 0 picks a free one (overrides [cluster] rpc_port; turns cluster mode on).")
    var rpcPort: Int?

    @Option(name: .long, help: "Seeds to join through, HOST:PORT,… (overrides [cluster] seeds; turns cluster mode on).")
    var seeds: String?

    @Option(name: .long, help: "Copies of every key, N (overrides [cluster] replication_factor; turns cluster mode on).")
    var replicationFactor: Int?

    @Option(name: .long, help: "Cluster name; gossip from another cluster is dropped (overrides [cluster] name; turns cluster mode on).")
    var clusterName: String?

    func run() async throws {
        var settings = ServerSettings()
        if let config {
            do throws(ConfigError) {
                settings = try ServerSettings.load(path: config)
            } catch {
                throw ValidationError("\(config): \(error)")
            }
        }
        if let dataDir { settings.dataDirectory = dataDir }
        if let httpPort { settings.http.port = httpPort }
        if let respPort { settings.resp.port = respPort }
        if let nodeId {
            settings.cluster.nodeID = nodeId
            settings.cluster.enabled = true
        }
        if let rpcPort {
            settings.cluster.rpcPort = rpcPort
            settings.cluster.enabled = true
        }
        if let seeds {
            guard let parsed = ClusterMembership.parseSeeds(seeds) else {
                throw ValidationError("--seeds must be HOST:PORT,HOST:PORT,…")
            }
            settings.cluster.seeds = parsed
            settings.cluster.enabled = true
        }
        if let replicationFactor {
            guard replicationFactor >= 1 else { throw ValidationError("--replication-factor must be at least 1") }
            settings.cluster.settings.ring.replicationFactor = replicationFactor
            settings.cluster.enabled = true
        }
        if let clusterName {
            guard !clusterName.isEmpty else { throw ValidationError("--cluster-name must not be empty") }
            settings.cluster.settings.name = clusterName
            settings.cluster.enabled = true
        }

        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kvd")

        // Signals are watched from before the engines open, so a SIGTERM during
        // recovery still ends in a clean shutdown; a second signal exits at once.
        let request = ShutdownRequest()
        let signals = ShutdownSignals { signal in
            if request.signal() > 1 {
                logger.warning("second signal \(signal): exiting without a clean shutdown")
                _exit(1)
            }
            logger.info("received signal \(signal): shutting down")
        }
        let server: NodeServer
        do throws(ServerError) {
            server = try await NodeServer.start(settings: settings, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        request.attach([server])
        await server.run()
        signals.cancel()
    }
}

/// A shutdown asked for by a signal, delivered to the servers once they exist.
final class ShutdownRequest: Sendable {
    private let state = Mutex<(servers: [NodeServer], signals: Int)>(([], 0))

    /// Records a signal and shuts the servers down if they are running; returns how many signals came.
    func signal() -> Int {
        let (servers, count) = state.withLock { s -> ([NodeServer], Int) in
            s.signals += 1
            return (s.servers, s.signals)
        }
        for server in servers { server.shutdown() }
        return count
    }

    /// Hands over the started servers; shuts them down at once if a signal already came.
    func attach(_ servers: [NodeServer]) {
        let signalled = state.withLock { s -> Bool in
            s.servers = servers
            return s.signals > 0
        }
        if signalled { for server in servers { server.shutdown() } }
    }
}

/// SIGTERM and SIGINT turned into a callback (via Dispatch signal sources, so the
/// handler runs as ordinary code, not in signal context).
final class ShutdownSignals {
    private let sources: [any DispatchSourceSignal]

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { handler(sig) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for s in sources { s.cancel() }
    }
}
