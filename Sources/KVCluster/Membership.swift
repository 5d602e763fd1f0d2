import KVCore

/// Where a node is in its life in the cluster.
public enum NodeStatus: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Announced, streaming its ranges in; not yet a replica for reads.
    case joining = 0
    /// A full member: owns its tokens.
    case normal = 1
    /// Decommissioning: streaming its ranges out; still a replica until it has left.
    case leaving = 2
    /// Gone: its tokens are no longer on the ring. Kept in gossip for a while so every
    /// node hears of it.
    case left = 3

    /// Whether the node's tokens are on the ring (it holds data for its ranges).
    public var ownsTokens: Bool { self == .normal || self == .leaving }

    public var description: String {
        switch self {
        case .joining: "joining"
        case .normal: "normal"
        case .leaving: "leaving"
        case .left: "left"
        }
    }
}

/// What gossip says about one node: the node's own account of itself, versioned.
///
/// Only the node itself changes its state (bumping `version`); others copy the
/// newest copy they see. `generation` is set at each start (it must grow across
/// restarts, e.g. seconds since the epoch), so a restarted node's state supersedes
/// everything it said in its previous life even though its versions restart at 0.
public struct EndpointState: Hashable, Sendable {
    /// The node described.
    public var id: NodeID
    /// Set at start; larger = a later incarnation.
    public var generation: UInt64
    /// Bumped by the node at every heartbeat and every change of its state.
    public var version: UInt64
    /// The `version` at which status, address, rack or tokens last changed. A peer
    /// holding this generation at `stateVersion` or later already has all of them,
    /// so gossip sends it only the new heartbeat version (`GossipUpdate.heartbeat`).
    public var stateVersion: UInt64
    /// Where the node is in its life in the cluster.
    public var status: NodeStatus
    /// Where the node listens for node-to-node RPC.
    public var address: NodeAddress
    /// The node's rack, if racks are configured.
    public var rack: String?
    /// The node's vnode tokens.
    public var tokens: [Token]

    public init(
        id: NodeID, generation: UInt64, version: UInt64 = 0, stateVersion: UInt64? = nil, status: NodeStatus,
        address: NodeAddress, rack: String? = nil, tokens: [Token]
    ) {
        self.id = id
        self.generation = generation
        self.version = version
        self.stateVersion = min(stateVersion ?? version, version)
        self.status = status
        self.address = address
        self.rack = rack
        self.tokens = tokens
    }

    /// The merge rule: a higher generation wins; in the same generation, a higher version.
    @inlinable public func supersedes(_ other: EndpointState) -> Bool {
        (generation, version) > (other.generation, other.version)
    }

    /// The short summary sent in a gossip digest.
    public var digest: GossipDigest { GossipDigest(id: id, generation: generation, version: version) }

    /// This node as a ring member.
    public var ringMember: RingMember { RingMember(id: id, rack: rack, tokens: tokens) }
}

/// The membership table: the newest known `EndpointState` of every node, merged
/// with the rule of `EndpointState.supersedes`. A plain value; merging is
/// commutative, associative and idempotent, so gossip order does not matter.
public struct Membership: Sendable, Equatable {
    /// The newest known state of each node, by id.
    public private(set) var states: [NodeID: EndpointState] = [:]

    public init(_ states: [EndpointState] = []) {
        for s in states { merge(s) }
    }

    /// The newest known state of `id`, if any.
    public subscript(id: NodeID) -> EndpointState? { states[id] }

    /// Keeps `state` if it is newer than what the table holds. Returns the previous
    /// state and whether the table changed. O(1).
    @discardableResult
    public mutating func merge(_ state: EndpointState) -> (changed: Bool, previous: EndpointState?) {
        let previous = states[state.id]
        if let previous, !state.supersedes(previous) { return (false, previous) }
        states[state.id] = state
        return (true, previous)
    }

    /// Replaces a node's state unconditionally (the node itself updating its own).
    mutating func set(_ state: EndpointState) { states[state.id] = state }

    /// Forgets a node (after a `left` node's retention ran out).
    mutating func remove(_ id: NodeID) { states[id] = nil }

    /// Digests of every state, sorted by id (the order is part of the wire format's determinism).
    public var digests: [GossipDigest] { states.values.map(\.digest).sorted { $0.id < $1.id } }

    /// The ring these states describe: the members whose status owns tokens.
    public func ring(replicationFactor: Int) -> Ring {
        Ring(members: states.values.filter { $0.status.ownsTokens }.map(\.ringMember), replicationFactor: replicationFactor)
    }

    /// The ring once every `leaving` node has left (the `normal` members only), or nil
    /// when no node is leaving. Writes for a range a leaving node replicates also go to
    /// the replicas this ring adds (`Ring.pendingReplicas(for:toward:)`). O(ring build).
    public func pendingRing(replicationFactor: Int) -> Ring? {
        guard states.values.contains(where: { $0.status == .leaving }) else { return nil }
        return Ring(members: states.values.filter { $0.status == .normal }.map(\.ringMember), replicationFactor: replicationFactor)
    }
}
