/// One range of data to copy from one node to another when ownership changes.
public struct RangeStream: Hashable, Sendable {
    /// The tokens to copy.
    public var range: TokenRange
    /// A node that replicated the range in the old ring.
    public var source: NodeID
    /// A node that replicates the range in the new ring but did not before.
    public var destination: NodeID

    public init(range: TokenRange, source: NodeID, destination: NodeID) {
        self.range = range
        self.source = source
        self.destination = destination
    }
}

/// What a membership change must stream before the new ring takes over: for join,
/// decommission and replacement alike (see `Ring.ownershipChanges(to:)`).
///
/// For each range a node gains, the source is the old replica that gives the range up
/// when it is up (it was responsible for exactly this data, as Cassandra prefers for
/// consistent range movement), otherwise the first up old replica in preference order.
/// Ranges with no up source are listed in `unsourced`: the operator must wait, or
/// accept that repair fills them later.
public struct StreamPlan: Hashable, Sendable {
    /// The copies to make, in token order.
    public var streams: [RangeStream]
    /// Gained ranges no up node can supply: (range, destination).
    public var unsourced: [Unsourced]

    /// A gained range with no up source.
    public struct Unsourced: Hashable, Sendable {
        /// The tokens that cannot be streamed now.
        public var range: TokenRange
        /// The node that should receive them.
        public var destination: NodeID
    }

    /// The plan for moving from `old` to `new` given which nodes are up. O(changes × N).
    public init(from old: Ring, to new: Ring, isUp: (NodeID) -> Bool) {
        streams = []
        unsourced = []
        for change in old.ownershipChanges(to: new) {
            let lost = change.lost
            for (i, destination) in change.gained.enumerated() {
                // Pair the i-th gaining node with the i-th losing one when possible, so
                // the load spreads over the nodes giving ranges up.
                let preferred = i < lost.count && isUp(lost[i]) ? lost[i] : nil
                if let source = preferred ?? change.oldReplicas.first(where: { $0 != destination && isUp($0) }) {
                    streams.append(RangeStream(range: change.range, source: source, destination: destination))
                } else {
                    unsourced.append(Unsourced(range: change.range, destination: destination))
                }
            }
        }
    }

    /// The streams a node must receive (what a joining node fetches).
    public func incoming(to node: NodeID) -> [RangeStream] { streams.filter { $0.destination == node } }

    /// The streams a node must send (what a decommissioning node pushes).
    public func outgoing(from node: NodeID) -> [RangeStream] { streams.filter { $0.source == node } }
}
