import KVCore
import Synchronization

/// What a node currently believes about the cluster: the ring, every known node's
/// gossiped state, and which nodes its failure detector considers up. The `Gossiper`
/// replaces it as a whole (an immutable snapshot swapped under a lock), and every
/// request reads one snapshot, so a request never sees half of a membership change.
/// Reading costs one lock and a few reference-count increments.
public final class ClusterView: Sendable {
    /// One consistent picture of the cluster.
    public struct Snapshot: Sendable {
        /// The node this view belongs to.
        public var local: NodeID
        /// The ring built from the members whose status owns tokens.
        public var ring: Ring
        /// The ring once every leaving node has left; nil when no node is leaving
        /// (see `Membership.pendingRing(replicationFactor:)`).
        public var pendingRing: Ring?
        /// The newest gossiped state of every known node (this one included).
        public var states: [NodeID: EndpointState]
        /// Peers the failure detector considers up (this node is always up to itself).
        public var live: Set<NodeID>
        /// When each peer now down was last seen going down (wall-clock ms).
        public var downSinceMillis: [NodeID: UInt64]

        /// Whether `id` is up in this view.
        public func isUp(_ id: NodeID) -> Bool { id == local || live.contains(id) }

        /// Where `id` listens for RPC, if known.
        public func address(of id: NodeID) -> NodeAddress? { states[id]?.address }

        /// The nodes that will replicate `token` once the leaving nodes have left but do
        /// not now: writes go to them too (Cassandra's pending ranges). Empty when no node
        /// is leaving. O(log V).
        public func pendingReplicas(for token: Token) -> [NodeID] {
            guard let pendingRing else { return [] }
            return ring.pendingReplicas(for: token, toward: pendingRing)
        }
    }

    private let current: Mutex<Snapshot>

    public init(local: NodeID, replicationFactor: Int) {
        current = Mutex(
            Snapshot(
                local: local, ring: .empty(replicationFactor: replicationFactor), pendingRing: nil, states: [:], live: [],
                downSinceMillis: [:]))
    }

    /// The current snapshot.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Replaces the snapshot with `body`'s change of it (atomically).
    public func update(_ body: (inout Snapshot) -> Void) {
        current.withLock { body(&$0) }
    }
}
