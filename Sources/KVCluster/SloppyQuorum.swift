import KVCore

/// One node a write is sent to: a natural replica, or a stand-in holding the write
/// as a hint for a replica that is down (Dynamo's sloppy quorum).
public struct WriteTarget: Hashable, Sendable {
    /// The node to send the write to.
    public var node: NodeID
    /// The down replica this write is a hint for; nil when `node` is a natural replica.
    public var hintFor: NodeID?

    public init(node: NodeID, hintFor: NodeID? = nil) {
        self.node = node
        self.hintFor = hintFor
    }
}

extension Ring {
    /// Where a write for `token` goes given which nodes are up: every natural replica
    /// that is up, and for each one that is down the next healthy node clockwise
    /// beyond the replica set (each stand-in used once), which stores the write as a
    /// hint and hands it over when the replica is back.
    ///
    /// A down replica with no healthy stand-in left gets no target; the coordinator
    /// keeps that hint itself (`hintFor` values missing from the result tell which).
    /// Stand-ins ignore racks: they hold hints, not replicas.
    ///
    /// - Complexity: O(log V) when every replica is up; otherwise up to O(V) for the walk.
    public func writeTargets(for token: Token, isUp: (NodeID) -> Bool) -> [WriteTarget] {
        let replicas = replicas(for: token)
        var targets = replicas.filter(isUp).map { WriteTarget(node: $0) }
        var down = replicas.filter { !isUp($0) }[...]
        guard !down.isEmpty else { return targets }
        var used = Set(replicas)
        let start = vnodeIndex(for: token)
        var i = start
        repeat {
            let node = members[Int(owners[i])].id
            if !used.contains(node) {
                used.insert(node)
                if isUp(node) { targets.append(WriteTarget(node: node, hintFor: down.removeFirst())) }
            }
            i = i + 1 == tokens.count ? 0 : i + 1
        } while i != start && !down.isEmpty && used.count < members.count
        return targets
    }

    /// The replicas of `token` in the order a read should try them: `local` first
    /// when it is a replica (reads at `one` prefer the local copy), then the other
    /// replicas that are up in preference order, then the down ones (tried last, so a
    /// stale view of liveness cannot make a read fail outright).
    public func readOrder(for token: Token, local: NodeID, isUp: (NodeID) -> Bool) -> [NodeID] {
        let replicas = replicas(for: token)
        let localFirst = replicas.contains(local) ? [local] : []
        let others = replicas.filter { $0 != local }
        return localFirst + others.filter(isUp) + others.filter { !isUp($0) }
    }
}
