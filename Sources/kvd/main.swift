import ArgumentParser
import Dispatch
import Glibc
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
        subcommands: [Serve.self])
}

/// `kvd serve`: runs one node until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one kvd node (replication 1) serving the HTTP API and RESP.")

    @Option(name: .long, help: "TOML configuration file (see Configs/single.toml). Without it, defaults apply.")
    var config: String?

    @Option(name: .long, help: "Data directory (overrides [node] data_dir).")
    var dataDir: String?

    @Option(name: .long, help: "HTTP port; 0 picks a free one (overrides [http] port).")
    var httpPort: Int?

    @Option(name: .long, help: "RESP port; 0 picks a free one (overrides [resp] port).")
    var respPort: Int?

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
        request.attach(server)
        await server.run()
        signals.cancel()
    }
}

/// A shutdown asked for by a signal, delivered to the server once it exists.
final class ShutdownRequest: Sendable {
    private let state = Mutex<(server: NodeServer?, signals: Int)>((nil, 0))

    /// Records a signal and shuts the server down if it is running; returns how many signals came.
    func signal() -> Int {
        let (server, count) = state.withLock { s -> (NodeServer?, Int) in
            s.signals += 1
            return (s.server, s.signals)
        }
        server?.shutdown()
        return count
    }

    /// Hands over the started server; shuts it down at once if a signal already came.
    func attach(_ server: NodeServer) {
        let signalled = state.withLock { s -> Bool in
            s.server = server
            return s.signals > 0
        }
        if signalled { server.shutdown() }
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
