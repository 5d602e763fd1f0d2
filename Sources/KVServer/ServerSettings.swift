import KVCore
import KVRuntime
import KVStorage
import KVTransport

/// Everything `kvd serve` needs to run one node, loaded from a TOML file
/// (`Configs/single.toml` documents every key, its default and unit).
///
/// The file's tables map onto the subsystems' own settings: `[node]` here,
/// `[http]` → `HTTPSettings`, `[resp]` → `RESPSettings`, `[runtime]` →
/// `RuntimeSettings`, `[transport]` → `TCPSettings`, `[limits]` → `Limits`,
/// `[storage]` → `StorageSettings`. Unknown keys are errors.
public struct ServerSettings: Sendable, Equatable {
    /// Directory of the node's data; shard N lives in `<dataDirectory>/shard-N`. Default "./data".
    public var dataDirectory: String
    /// IPv4 address both listeners bind to. Default "127.0.0.1".
    public var bindHost: String
    /// How long shutdown lets open connections finish before resetting them, in milliseconds. Default 5,000.
    public var shutdownGraceMillis: Int
    /// Log level: trace, debug, info, notice, warning, error or critical. Default "info".
    public var logLevel: String
    /// The HTTP front end (`[http]`).
    public var http: HTTPSettings
    /// The RESP front end (`[resp]`).
    public var resp: RESPSettings
    /// Event loops: count (= shards), pinning (`[runtime]`).
    public var runtime: RuntimeSettings
    /// Sockets: connection limit, timeouts, buffers (`[transport]`).
    public var transport: TCPSettings
    /// Key and value size limits (also given to the storage engine).
    public var limits: Limits
    /// Each shard's engine: commit mode, memtable, caches (`[storage]`).
    public var storage: StorageSettings

    public init(
        dataDirectory: String = "./data", bindHost: String = "127.0.0.1", shutdownGraceMillis: Int = 5000,
        logLevel: String = "info", http: HTTPSettings = HTTPSettings(), resp: RESPSettings = RESPSettings(),
        runtime: RuntimeSettings = RuntimeSettings(), transport: TCPSettings = TCPSettings(),
        limits: Limits = .default, storage: StorageSettings = .default
    ) {
        self.dataDirectory = dataDirectory
        self.bindHost = bindHost
        self.shutdownGraceMillis = shutdownGraceMillis
        self.logLevel = logLevel
        self.http = http
        self.resp = resp
        self.runtime = runtime
        self.transport = transport
        self.limits = limits
        self.storage = storage
    }

    /// The storage settings with the node's limits applied.
    public var effectiveStorage: StorageSettings {
        var s = storage
        s.limits = limits
        return s
    }
}
