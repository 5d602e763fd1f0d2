import KVCore
import KVStorage

/// Everything one cluster node is started with: who it is, where it listens for
/// node-to-node RPC, whom it joins through, and its storage and cluster settings.
public struct NodeSettings: Sendable {
    /// The node's stable name (`--node-id`). Default `node1`.
    public var id: NodeID
    /// Where the node listens for RPC (`--rpc-port`); port 0 picks a free one.
    /// Default 127.0.0.1:7000.
    public var rpcAddress: NodeAddress
    /// Nodes to join through (`--seeds`). Default none (the node starts a cluster).
    public var seeds: [NodeAddress]
    /// The node's rack; replicas go to distinct racks first. Default none.
    public var rack: String?
    /// Where shards, hints and the generation file live (`--data-dir`).
    public var dataDirectory: String
    /// Each shard's engine settings (also used for the hint log).
    public var storage: StorageSettings
    /// Ring, gossip, quorum and hint settings.
    public var cluster: ClusterSettings

    public init(
        id: NodeID = NodeID("node1"), rpcAddress: NodeAddress = NodeAddress(host: "127.0.0.1", port: 7000),
        seeds: [NodeAddress] = [], rack: String? = nil, dataDirectory: String,
        storage: StorageSettings = .default, cluster: ClusterSettings = .init()
    ) {
        self.id = id
        self.rpcAddress = rpcAddress
        self.seeds = seeds
        self.rack = rack
        self.dataDirectory = dataDirectory
        self.storage = storage
        self.cluster = cluster
    }
}
