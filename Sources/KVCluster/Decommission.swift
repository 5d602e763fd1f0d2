import KVCore

/// Why a decommission was refused or failed. The refusals (every case but
/// `streamFailed` and `interrupted`) are checked before anything changes; the server
/// answers them with HTTP 409 and `code`.
public enum DecommissionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Only a `normal` node can leave (it is joining, already leaving, or has left).
    case notNormal(NodeStatus)
    /// A decommission of this node was already asked for and has not ended.
    case alreadyInProgress
    /// Another node is leaving; one range movement at a time (as Cassandra's
    /// consistent range movement), so every range keeps a complete source.
    case anotherNodeLeaving(NodeID)
    /// Without this node the ring would hold fewer nodes than the replication factor
    /// (the last node, or 3 nodes at N = 3): keys would lose a copy. Cassandra refuses
    /// this too. Lower the replication factor or add a node first.
    case tooFewNodes(remaining: Int, replicationFactor: Int)
    /// A node that must receive ranges is down: bring it back (or wait) and retry.
    case destinationDown(NodeID)
    /// A range could not be sent after every attempt; the node went back to `normal`.
    case streamFailed(range: TokenRange, destination: NodeID, reason: String)
    /// The node was shut down during the decommission; it went back to `normal`.
    case interrupted
    /// The `DECOMMISSIONED` record could not be written (the node went back to `normal`).
    case recordNotWritten(KVError)

    /// A short machine-readable name (the `code` of the HTTP error).
    public var code: String {
        switch self {
        case .notNormal: "not_normal"
        case .alreadyInProgress: "decommission_in_progress"
        case .anotherNodeLeaving: "another_node_leaving"
        case .tooFewNodes: "too_few_nodes"
        case .destinationDown: "destination_down"
        case .streamFailed: "stream_failed"
        case .interrupted: "interrupted"
        case .recordNotWritten: "record_not_written"
        }
    }

    public var description: String {
        switch self {
        case let .notNormal(status): "only a normal node can be decommissioned; this node is \(status)"
        case .alreadyInProgress: "this node is already being decommissioned"
        case let .anotherNodeLeaving(id): "\(id) is leaving; decommission one node at a time"
        case let .tooFewNodes(remaining, rf):
            "only \(remaining) nodes would remain for replication factor \(rf); add a node or lower the replication factor first"
        case let .destinationDown(id): "\(id) must receive ranges but is down"
        case let .streamFailed(range, destination, reason): "streaming \(range) to \(destination) failed: \(reason)"
        case .interrupted: "the node was shut down during the decommission"
        case let .recordNotWritten(error): "cannot record the decommission in the data directory: \(error)"
        }
    }
}

/// Where a decommission is. The normal order is `announcingLeaving` → `streaming` →
/// `announcingLeft` → `handingOffHints` → `left`; `failed` ends it early (the node is
/// `normal` again).
public enum DecommissionPhase: String, Sendable, Hashable, CaseIterable {
    /// Gossiping `leaving` until every live peer has heard, then letting in-flight writes finish.
    case announcingLeaving = "announcing_leaving"
    /// Sending every range this node gives up to the node that gains it.
    case streaming
    /// Gossiping `left` until every live peer has heard (it then drops this node from its ring).
    case announcingLeft = "announcing_left"
    /// Delivering the hints this node holds, or handing them to a remaining node.
    case handingOffHints = "handing_off_hints"
    /// Done: the node is out of the ring and shuts down.
    case left
    /// Refused or failed; see `DecommissionProgress.error`.
    case failed

    /// True for `left` and `failed`.
    public var isFinished: Bool { self == .left || self == .failed }
}

/// What a decommission has done so far (`Node.decommissionProgress`, `GET /api/v1/cluster/decommission`).
public struct DecommissionProgress: Sendable, Equatable {
    /// The current phase.
    public var phase: DecommissionPhase
    /// Ranges to stream (one per `RangeStream` of the plan).
    public var rangesTotal: Int
    /// Ranges streamed completely.
    public var rangesStreamed: Int = 0
    /// Records sent (newest version per key: values, tombstones and expired values alike).
    public var recordsStreamed: UInt64 = 0
    /// Bytes of keys and values sent.
    public var bytesStreamed: UInt64 = 0
    /// Hints delivered to their targets at the end.
    public var hintsDelivered: Int = 0
    /// Hints handed to a remaining node for targets that were down.
    public var hintsHandedOff: Int = 0
    /// Why it failed, when `phase == .failed`.
    public var error: DecommissionError?
    /// Wall-clock start, ms since the Unix epoch.
    public var startedAtMillis: UInt64
    /// Wall-clock end, when finished.
    public var finishedAtMillis: UInt64?

    /// A decommission at `phase` with `rangesTotal` ranges to stream and nothing done yet.
    public init(phase: DecommissionPhase, rangesTotal: Int, startedAtMillis: UInt64) {
        self.phase = phase
        self.rangesTotal = rangesTotal
        self.startedAtMillis = startedAtMillis
    }
}

/// What leaving the ring means for one node: the ring without it, and the ranges it
/// must stream to the nodes that gain them. Pure; building it checks every refusal
/// of `DecommissionError` that can be known up front.
///
/// The leaving node is the source of every stream (`StreamPlan` with only it counted
/// as up): it replicated every range that changes hands, so it can supply each one
/// whatever state the other old replicas are in, and the others keep serving. Only a
/// range whose replica set contained the leaving node changes.
public struct DecommissionPlan: Sendable, Equatable {
    /// The node leaving.
    public let leaving: NodeID
    /// The ring once it has left.
    public let remaining: Ring
    /// What it must send, in token order; every `source` is `leaving`.
    public let streams: [RangeStream]

    /// The plan for `node` leaving `ring`, given every node's gossiped state and
    /// liveness. Throws the refusal when the decommission must not start.
    /// O(ring build + changes × N).
    public init(
        leaving node: NodeID, ring: Ring, states: [NodeID: EndpointState], isUp: (NodeID) -> Bool
    ) throws(DecommissionError) {
        let status = states[node]?.status ?? .joining
        guard status == .normal else { throw .notNormal(status) }
        if let other = states.values.filter({ $0.id != node && $0.status == .leaving }).map(\.id).min() {
            throw .anotherNodeLeaving(other)
        }
        let remaining = ring.removing(node)
        guard remaining.members.count >= ring.replicationFactor else {
            throw .tooFewNodes(remaining: remaining.members.count, replicationFactor: ring.replicationFactor)
        }
        let plan = StreamPlan(from: ring, to: remaining) { $0 == node }
        if let down = plan.streams.map(\.destination).filter({ !isUp($0) }).min() { throw .destinationDown(down) }
        self.leaving = node
        self.remaining = remaining
        self.streams = plan.streams
    }

    /// Whether `node`, already leaving, must give way to another node found leaving too
    /// (both asked before hearing of each other), which is returned. It must when a node
    /// with a smaller id is leaving (every node decides the same way), or when a node not
    /// among `leftBefore` (those already `left` when `node` announced) has left since: it
    /// was leaving alongside and finished before `node` looked. Going on then would start
    /// a second range movement against a plan checked on the old ring (with 4 nodes at
    /// N = 3, both would leave and 2 remain). O(nodes).
    public static func nodeToGiveWayTo(
        leaving node: NodeID, states: [NodeID: EndpointState], leftBefore: Set<NodeID>
    ) -> NodeID? {
        states.values.filter { other in
            other.id != node
                && ((other.status == .leaving && other.id < node) || (other.status == .left && !leftBefore.contains(other.id)))
        }.map(\.id).min()
    }

    /// The plan from one consistent view of the cluster.
    public init(leaving node: NodeID, view: ClusterView.Snapshot) throws(DecommissionError) {
        try self.init(leaving: node, ring: view.ring, states: view.states, isUp: view.isUp)
    }
}
