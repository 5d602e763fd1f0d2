/// Every tunable of the cluster layer, each with its default and unit.
/// Loaded from the `[cluster]` section of `Configs/*.toml` by the server; the
/// defaults are what `kvd dev` runs with.
public struct ClusterSettings: Sendable, Equatable {
    /// The default cluster name, `"kvd"`.
    public static let defaultName = "kvd"

    /// The cluster's name (`[cluster] name`, `--cluster-name`). Default `"kvd"`. Every
    /// gossip message carries it; a node drops gossip from a node whose cluster name
    /// differs (logged once per peer as "ClusterName mismatch", counted), so two
    /// clusters seeded at each other by mistake never merge.
    public var name: String
    /// Token ring and replica placement.
    public var ring: RingSettings
    /// Gossip rounds and membership.
    public var gossip: GossipSettings
    /// Phi-accrual failure detection of peers.
    public var failureDetector: FailureDetectorSettings
    /// Consistency levels and replica timeouts.
    public var quorum: QuorumSettings
    /// Hinted handoff for replicas that are down.
    public var hints: HintSettings
    /// Merkle-tree repair between replicas.
    public var antiEntropy: AntiEntropySettings
    /// Decommission: announcing, streaming ranges out, handing hints over.
    public var decommission: DecommissionSettings

    public init(
        name: String = ClusterSettings.defaultName,
        ring: RingSettings = .init(),
        gossip: GossipSettings = .init(),
        failureDetector: FailureDetectorSettings = .init(),
        quorum: QuorumSettings = .init(),
        hints: HintSettings = .init(),
        antiEntropy: AntiEntropySettings = .init(),
        decommission: DecommissionSettings = .init()
    ) {
        self.name = name
        self.ring = ring
        self.gossip = gossip
        self.failureDetector = failureDetector
        self.quorum = quorum
        self.hints = hints
        self.antiEntropy = antiEntropy
        self.decommission = decommission
    }
}

/// How keys are placed on nodes.
public struct RingSettings: Sendable, Equatable {
    /// Virtual nodes (tokens) per node. Default 256. More tokens: better balance
    /// and smaller streams per node change, but a larger ring (16 bytes each) to build.
    public var numTokens: Int
    /// N: how many distinct nodes hold each key. Default 3.
    public var replicationFactor: Int

    public init(numTokens: Int = 256, replicationFactor: Int = 3) {
        self.numTokens = numTokens
        self.replicationFactor = replicationFactor
    }
}

/// How often and with whom gossip is exchanged.
public struct GossipSettings: Sendable, Equatable {
    /// Time between gossip rounds, in milliseconds. Default 1000.
    public var intervalMillis: UInt64
    /// How long a node in state `left` stays in the table before it is forgotten,
    /// in milliseconds. Default 259_200_000 (3 days, as Cassandra), long enough that
    /// every node has seen the departure.
    public var leftRetentionMillis: UInt64

    public init(intervalMillis: UInt64 = 1000, leftRetentionMillis: UInt64 = 259_200_000) {
        self.intervalMillis = intervalMillis
        self.leftRetentionMillis = leftRetentionMillis
    }
}

/// The phi-accrual failure detector's parameters (Akka's names and defaults).
public struct FailureDetectorSettings: Sendable, Equatable {
    /// Phi above which a peer is considered down. Default 8 (about one false
    /// positive in 10^8 under the fitted distribution).
    public var phiThreshold: Double
    /// Most inter-arrival samples kept per peer. Default 1000.
    public var maxSampleSize: Int
    /// Lower bound on the standard deviation, in milliseconds. Default 100;
    /// keeps a perfectly regular peer from being declared down after one late beat.
    public var minStdDeviationMillis: Double
    /// Silence tolerated on top of the mean interval before phi rises, in
    /// milliseconds. Default 3000 (gossip heartbeats travel indirectly, so they
    /// arrive in bursts).
    public var acceptableHeartbeatPauseMillis: Double
    /// The interval assumed before any sample exists, in milliseconds. Default 1000.
    public var firstHeartbeatEstimateMillis: Double
    /// Intervals longer than this are outages, not the heartbeat rhythm, and are
    /// not recorded, in milliseconds. Default 10_000.
    public var maxIntervalMillis: UInt64

    public init(
        phiThreshold: Double = 8,
        maxSampleSize: Int = 1000,
        minStdDeviationMillis: Double = 100,
        acceptableHeartbeatPauseMillis: Double = 3000,
        firstHeartbeatEstimateMillis: Double = 1000,
        maxIntervalMillis: UInt64 = 10_000
    ) {
        self.phiThreshold = phiThreshold
        self.maxSampleSize = maxSampleSize
        self.minStdDeviationMillis = minStdDeviationMillis
        self.acceptableHeartbeatPauseMillis = acceptableHeartbeatPauseMillis
        self.firstHeartbeatEstimateMillis = firstHeartbeatEstimateMillis
        self.maxIntervalMillis = maxIntervalMillis
    }
}

/// Default consistency and per-replica timeouts.
public struct QuorumSettings: Sendable, Equatable {
    /// Consistency of a write that names none. Default `.quorum` (W = 2 at N = 3).
    public var writeConsistency: ConsistencyLevel
    /// Consistency of a read that names none. Default `.quorum` (R = 2 at N = 3).
    public var readConsistency: ConsistencyLevel
    /// How long a coordinator waits for replica write acks, in milliseconds. Default 2000.
    public var writeTimeoutMillis: UInt64
    /// How long a coordinator waits for replica read replies, in milliseconds. Default 2000.
    public var readTimeoutMillis: UInt64
    /// Whether a quorum read waits for its read repairs before replying. Default true
    /// (a following quorum read then sees the same value: monotonic quorum reads).
    public var blockingReadRepair: Bool
    /// How far ahead of a node's wall clock a timestamp it receives may be, in
    /// milliseconds. Default 5000. Writes stamped further ahead are rejected and such
    /// read replies ignored (see `NodeClock`).
    public var maxClockDriftMillis: UInt64

    public init(
        writeConsistency: ConsistencyLevel = .quorum,
        readConsistency: ConsistencyLevel = .quorum,
        writeTimeoutMillis: UInt64 = 2000,
        readTimeoutMillis: UInt64 = 2000,
        blockingReadRepair: Bool = true,
        maxClockDriftMillis: UInt64 = 5000
    ) {
        self.writeConsistency = writeConsistency
        self.readConsistency = readConsistency
        self.writeTimeoutMillis = writeTimeoutMillis
        self.readTimeoutMillis = readTimeoutMillis
        self.blockingReadRepair = blockingReadRepair
        self.maxClockDriftMillis = maxClockDriftMillis
    }
}

/// Hinted handoff: writes kept for a replica that is down.
public struct HintSettings: Sendable, Equatable {
    /// How long a hint is kept before it is dropped, in milliseconds. Default
    /// 10_800_000 (3 hours). Older differences are left to anti-entropy repair.
    public var windowMillis: UInt64
    /// Most hints stored per target node. Default 100_000; beyond it new hints are
    /// dropped and counted, the write itself still succeeds.
    public var maxHintsPerTarget: Int
    /// Most hints delivered per batch to a recovered node. Default 128.
    public var deliveryBatchSize: Int
    /// Time between two delivery passes over the targets that are up, in milliseconds. Default 1000.
    public var deliveryIntervalMillis: UInt64

    public init(
        windowMillis: UInt64 = 10_800_000, maxHintsPerTarget: Int = 100_000, deliveryBatchSize: Int = 128,
        deliveryIntervalMillis: UInt64 = 1000
    ) {
        self.windowMillis = windowMillis
        self.maxHintsPerTarget = maxHintsPerTarget
        self.deliveryBatchSize = deliveryBatchSize
        self.deliveryIntervalMillis = deliveryIntervalMillis
    }
}

/// Anti-entropy: periodic Merkle-tree comparison of each range with its replica partners.
public struct AntiEntropySettings: Sendable, Equatable {
    /// log2 of the leaves per range's Merkle tree, 0...15. Default 15 (32,768 leaves,
    /// 256 KiB per tree); a differing leaf streams about range/32,768 of the keys.
    public var merkleDepth: Int
    /// Time between two repairs of the same range, in milliseconds. Default
    /// 3_600_000 (1 hour); must stay well under the tombstone grace period (10 days).
    public var intervalMillis: UInt64

    public init(merkleDepth: Int = MerkleTree.maxDepth, intervalMillis: UInt64 = 3_600_000) {
        self.merkleDepth = merkleDepth
        self.intervalMillis = intervalMillis
    }
}

/// Decommission (`Node.decommission()`): how a leaving node waits for the cluster to
/// hear of it and streams its ranges to the nodes taking them over.
public struct DecommissionSettings: Sendable, Equatable {
    /// Most records per streamed batch (one `replicaWrite` RPC). Default 512.
    public var streamBatchEntries: Int
    /// Most bytes of keys and values per streamed batch, in bytes. Default 4_194_304
    /// (4 MiB, well under the 16 MiB RPC frame limit; a batch always holds at least one record).
    public var streamBatchBytes: Int
    /// Attempts per batch before the decommission fails (and the node returns to
    /// `normal`). Default 5, one gossip interval apart.
    public var streamAttempts: Int
    /// Longest wait for every live peer to gossip back this node's `leaving` (and later
    /// `left`) state, in milliseconds. Default 30_000 (Cassandra's RING_DELAY). On expiry
    /// the decommission goes on (a peer that has not heard by then is logged).
    public var announceTimeoutMillis: UInt64
    /// How long a server whose node has left keeps answering the decommission status
    /// (HTTP) before it shuts down, in milliseconds. Default 2000.
    public var exitDelayMillis: UInt64

    public init(
        streamBatchEntries: Int = 512, streamBatchBytes: Int = 4 << 20, streamAttempts: Int = 5,
        announceTimeoutMillis: UInt64 = 30_000, exitDelayMillis: UInt64 = 2000
    ) {
        self.streamBatchEntries = streamBatchEntries
        self.streamBatchBytes = streamBatchBytes
        self.streamAttempts = streamAttempts
        self.announceTimeoutMillis = announceTimeoutMillis
        self.exitDelayMillis = exitDelayMillis
    }
}
