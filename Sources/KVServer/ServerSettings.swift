import Glibc
import KVCluster
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
/// `[storage]` → `StorageSettings`, `[cluster]` → `ClusterMembership` (with the
/// cluster layer's `ClusterSettings`). Unknown keys are errors.
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
    /// Each shard's engine: commit mode, memtable, caches (`[storage]`). Its block cache
    /// size is set from `blockCacheBytes` when the node opens (see `effectiveStorage`).
    public var storage: StorageSettings
    /// The node's SSTable block cache, in bytes, split evenly across its shards; 0 turns it
    /// off. Default nil: automatic, `automaticBlockCacheBytes` of this machine's memory.
    public var blockCacheBytes: Int?
    /// Cluster membership (`[cluster]`). Default: disabled (a single node, replication 1).
    public var cluster: ClusterMembership

    public init(
        dataDirectory: String = "./data", bindHost: String = "127.0.0.1", shutdownGraceMillis: Int = 5000,
        logLevel: String = "info", http: HTTPSettings = HTTPSettings(), resp: RESPSettings = RESPSettings(),
        runtime: RuntimeSettings = RuntimeSettings(), transport: TCPSettings = TCPSettings(),
        limits: Limits = .default, storage: StorageSettings = .default, blockCacheBytes: Int? = nil,
        cluster: ClusterMembership = ClusterMembership()
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
        self.blockCacheBytes = blockCacheBytes
        self.cluster = cluster
    }

    /// Each of `shards` engines' storage settings: the node's limits applied, and its
    /// share of the node's block cache.
    public func effectiveStorage(shards: Int) -> StorageSettings {
        var s = storage
        s.limits = limits
        let total = blockCacheBytes ?? Self.automaticBlockCacheBytes(physicalMemoryBytes: Self.physicalMemoryBytes())
        s.tables.blockCacheBytes = total / max(1, shards)
        return s
    }

    /// The block cache a node gets by default: an eighth of physical memory, at most
    /// 1 GiB and at least 16 MiB (1 GiB from 8 GiB of RAM up). The SSTables' blocks stay
    /// in the page cache as well; this bounds the decoded copies a lookup reads without a
    /// system call. Cassandra's chunk cache is sized the same way (a fraction of memory,
    /// capped); the engine's own default (`TableSettings`) stays 64 MiB per engine.
    public static func automaticBlockCacheBytes(physicalMemoryBytes: UInt64) -> Int {
        Int(clamping: min(1 << 30, max(16 << 20, physicalMemoryBytes / 8)))
    }

    /// This machine's physical memory in bytes (`sysconf`), 0 when unknown.
    public static func physicalMemoryBytes() -> UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return 0 }
        return UInt64(pages) &* UInt64(pageSize)
    }
}

/// How a node takes part in a cluster (the `[cluster]` table; flags `--node-id`,
/// `--rpc-port`, `--seeds`, `--replication-factor`, `--cluster-name` override it and
/// turn it on). The cluster's name is `settings.name` (`[cluster] name`, default "kvd").
public struct ClusterMembership: Sendable, Equatable {
    /// Run as a cluster member (replicated through the ring). Default false.
    public var enabled: Bool
    /// The node's stable name, unique in the cluster. Default "node1".
    public var nodeID: String
    /// Port of node-to-node RPC on `bindHost`; 0 picks a free one. Default 7000.
    public var rpcPort: Int
    /// Nodes to join through (their RPC addresses). Default none (a new cluster).
    public var seeds: [KVCluster.NodeAddress]
    /// The node's rack. Default none.
    public var rack: String?
    /// Cluster name, ring, gossip, quorum, hint and decommission settings (defaults: name
    /// "kvd", N=3, W=R=quorum, 1 s gossip, 3 h hints).
    public var settings: ClusterSettings

    public init(
        enabled: Bool = false, nodeID: String = "node1", rpcPort: Int = 7000, seeds: [KVCluster.NodeAddress] = [],
        rack: String? = nil, settings: ClusterSettings = ClusterSettings()
    ) {
        self.enabled = enabled
        self.nodeID = nodeID
        self.rpcPort = rpcPort
        self.seeds = seeds
        self.rack = rack
        self.settings = settings
    }
}

extension ServerSettings {
    /// The cluster node's settings drawn from these (data directory, bind address, storage
    /// for `shards` shards).
    public func clusterNodeSettings(shards: Int) -> NodeSettings {
        NodeSettings(
            id: NodeID(cluster.nodeID),
            rpcAddress: KVCluster.NodeAddress(host: bindHost, port: UInt16(clamping: cluster.rpcPort)),
            seeds: cluster.seeds, rack: cluster.rack, dataDirectory: dataDirectory, storage: effectiveStorage(shards: shards),
            cluster: cluster.settings)
    }
}
