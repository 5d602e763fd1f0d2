import KVCore

/// One node's place on the ring: its id, optional rack and its vnode tokens.
public struct RingMember: Hashable, Sendable {
    /// The node.
    public var id: NodeID
    /// The rack; replicas of a key go to distinct racks first. `nil` = a rack of its own.
    public var rack: String?
    /// The node's vnode tokens (usually `Ring.defaultTokens(for:count:)`).
    public var tokens: [Token]

    public init(id: NodeID, rack: String? = nil, tokens: [Token]) {
        self.id = id
        self.rack = rack
        self.tokens = tokens
    }

    /// A member with `count` tokens derived from its id (see `Ring.defaultTokens`).
    public init(id: NodeID, rack: String? = nil, tokenCount: Int) {
        self.init(id: id, rack: rack, tokens: Ring.defaultTokens(for: id, count: tokenCount))
    }
}

/// A change of replicas for one token range between two rings: what streaming must
/// move when membership changes.
public struct OwnershipChange: Hashable, Sendable {
    /// The tokens whose replicas change.
    public var range: TokenRange
    /// The replicas in the old ring, in preference order.
    public var oldReplicas: [NodeID]
    /// The replicas in the new ring, in preference order.
    public var newReplicas: [NodeID]

    /// Nodes that must receive the range (replicas now, not before).
    public var gained: [NodeID] { newReplicas.filter { !oldReplicas.contains($0) } }
    /// Nodes that no longer replicate the range (may clean it up once streamed).
    public var lost: [NodeID] { oldReplicas.filter { !newReplicas.contains($0) } }
}

/// The consistent-hash ring: an immutable value built once per membership change
/// and swapped atomically by the node that owns it.
///
/// Each member holds `num_tokens` vnodes. A key belongs to the first vnode whose
/// token is at or after the key's token (wrapping), and is replicated on that
/// vnode's replica set: N distinct nodes found clockwise, distinct racks first
/// (`ReplicaPlacement`). Replica sets are computed for every vnode when the ring is
/// built, so a lookup is one binary search and one array read.
///
/// Cost: building is O(V log V + V × walk) for V vnodes (1,280 for 5 nodes × 256:
/// well under a millisecond); memory is about 8 + 4 + 4N bytes per vnode.
public struct Ring: Sendable, Equatable {
    /// The members, sorted by id.
    public let members: [RingMember]
    /// N as configured (the replica sets hold `min(N, members.count)` nodes).
    public let replicationFactor: Int
    /// Every vnode token, ascending.
    public let tokens: [Token]
    /// The member index owning each vnode in `tokens`.
    let owners: [Int32]
    /// Replicas per vnode: `min(N, members.count)`.
    private let replicaCount: Int
    /// The replica member indices of vnode `i`, in preference order, are
    /// `replicaTable[i * replicaCount ..< (i + 1) * replicaCount]`.
    private let replicaTable: [Int32]
    private let indexOfMember: [NodeID: Int]

    /// Builds the ring. If two members claim the same token, the one with the
    /// smaller id keeps it (every node decides the same way).
    public init(members: [RingMember], replicationFactor: Int) {
        precondition(replicationFactor >= 1, "replication factor must be at least 1")
        let sorted = members.sorted { $0.id < $1.id }
        self.members = sorted
        self.replicationFactor = replicationFactor
        var index: [NodeID: Int] = [:]
        for (i, m) in sorted.enumerated() { index[m.id] = i }
        self.indexOfMember = index

        var vnodes: [(token: Token, owner: Int32)] = []
        vnodes.reserveCapacity(sorted.reduce(0) { $0 + $1.tokens.count })
        for (i, m) in sorted.enumerated() {
            for t in m.tokens { vnodes.append((t, Int32(i))) }
        }
        vnodes.sort { $0.token != $1.token ? $0.token < $1.token : $0.owner < $1.owner }
        var uniqueTokens: [Token] = []
        var uniqueOwners: [Int32] = []
        uniqueTokens.reserveCapacity(vnodes.count)
        uniqueOwners.reserveCapacity(vnodes.count)
        for v in vnodes where uniqueTokens.last != v.token {
            uniqueTokens.append(v.token)
            uniqueOwners.append(v.owner)
        }
        self.tokens = uniqueTokens
        self.owners = uniqueOwners

        var rackKeys: [String: Int] = [:]
        let rackOf = sorted.map { m -> Int in
            let key = m.rack.map { "rack:" + $0 } ?? "node:" + m.id.name
            if let k = rackKeys[key] { return k }
            rackKeys[key] = rackKeys.count
            return rackKeys.count - 1
        }
        (self.replicaCount, self.replicaTable) = ReplicaPlacement.replicaTable(
            owners: uniqueOwners, rackOf: rackOf, replicationFactor: replicationFactor)
    }

    /// Rings are equal when built from the same members and replication factor
    /// (everything else follows from those). O(members × tokens).
    public static func == (lhs: Ring, rhs: Ring) -> Bool {
        lhs.replicationFactor == rhs.replicationFactor && lhs.members == rhs.members
    }

    /// An empty ring (no members): every lookup returns no replicas.
    public static func empty(replicationFactor: Int) -> Ring {
        Ring(members: [], replicationFactor: replicationFactor)
    }

    /// `count` tokens for `node`: XXH64 of the UTF-8 bytes of `"<id>#<i>"` for i in
    /// 0..<count. Deterministic, so a node's tokens need not be stored to be known,
    /// and spread uniformly enough that 256 tokens give each of 5 nodes 20 % ± ~2 %.
    public static func defaultTokens(for node: NodeID, count: Int) -> [Token] {
        (0..<count).map { Token(hashing: Array("\(node.name)#\($0)".utf8)) }
    }

    /// True when the ring has no vnodes.
    public var isEmpty: Bool { tokens.isEmpty }

    /// The index of the vnode that owns `token`: the first vnode token ≥ `token`,
    /// wrapping to 0. O(log V). Requires a non-empty ring.
    func vnodeIndex(for token: Token) -> Int {
        var lo = 0
        var hi = tokens.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if tokens[mid] < token { lo = mid + 1 } else { hi = mid }
        }
        return lo == tokens.count ? 0 : lo
    }

    /// The member indices replicating vnode `i`, in preference order.
    private func replicaIndices(ofVnode i: Int) -> ArraySlice<Int32> {
        replicaTable[(i * replicaCount)..<((i + 1) * replicaCount)]
    }

    /// The replicas of `token`, primary first, `min(N, members)` distinct nodes. O(log V).
    public func replicas(for token: Token) -> [NodeID] {
        guard !tokens.isEmpty else { return [] }
        return replicaIndices(ofVnode: vnodeIndex(for: token)).map { members[Int($0)].id }
    }

    /// The replicas of `key` (of its token). O(log V) plus hashing the key.
    public func replicas(for key: Key) -> [NodeID] { replicas(for: key.token) }

    /// The node owning the vnode `token` falls in (the first replica).
    public func primary(for token: Token) -> NodeID? {
        guard !tokens.isEmpty else { return nil }
        return members[Int(owners[vnodeIndex(for: token)])].id
    }

    /// The range of vnode `i`: `(token of vnode i-1, token of vnode i]`.
    func range(ofVnode i: Int) -> TokenRange {
        if tokens.count == 1 { return .fullRing }
        return TokenRange(start: tokens[i == 0 ? tokens.count - 1 : i - 1], end: tokens[i])
    }

    /// Every vnode's range with its replicas, in token order. O(V).
    public var rangesWithReplicas: [(range: TokenRange, replicas: [NodeID])] {
        tokens.indices.map { (range(ofVnode: $0), replicaIndices(ofVnode: $0).map { members[Int($0)].id }) }
    }

    /// The ranges whose vnode `node` owns (where it is the primary replica). O(V).
    public func primaryRanges(of node: NodeID) -> [TokenRange] {
        guard let m = indexOfMember[node] else { return [] }
        return tokens.indices.filter { owners[$0] == Int32(m) }.map { range(ofVnode: $0) }
    }

    /// The ranges `node` holds a replica of (primary or not). O(V × N).
    public func replicatedRanges(of node: NodeID) -> [TokenRange] {
        guard let m = indexOfMember[node] else { return [] }
        return tokens.indices.filter { replicaIndices(ofVnode: $0).contains(Int32(m)) }.map { range(ofVnode: $0) }
    }

    /// The share of the ring each member owns as primary (sums to 1).
    public var primaryOwnership: [NodeID: Double] {
        var shares: [NodeID: Double] = [:]
        for m in members { shares[m.id] = 0 }
        for i in tokens.indices { shares[members[Int(owners[i])].id, default: 0] += range(ofVnode: i).fractionOfRing }
        return shares
    }

    /// This ring without `node` (what remains once it has left). O(ring build).
    public func removing(_ node: NodeID) -> Ring {
        Ring(members: members.filter { $0.id != node }, replicationFactor: replicationFactor)
    }

    /// The replicas of `token` in `future` that are not replicas of it in this ring:
    /// the pending replicas a write must also reach while the ring moves toward
    /// `future` (e.g. while a node is leaving). O(log V + log V').
    public func pendingReplicas(for token: Token, toward future: Ring) -> [NodeID] {
        let now = replicas(for: token)
        return future.replicas(for: token).filter { !now.contains($0) }
    }

    /// The ranges whose replica sets differ between `self` (old) and `newer`, merged
    /// where adjacent ranges have the same change. O((V + V') log(V + V')).
    ///
    /// The ranges are cut at the union of both rings' tokens, so every range has a
    /// single replica set in each ring. Replica sets are compared as sets: a change of
    /// preference order alone moves no data.
    public func ownershipChanges(to newer: Ring) -> [OwnershipChange] {
        let bounds = Array(Set(tokens).union(newer.tokens)).sorted()
        guard !bounds.isEmpty else { return [] }
        var changes: [OwnershipChange] = []
        for (i, end) in bounds.enumerated() {
            let start = bounds.count == 1 ? end : bounds[i == 0 ? bounds.count - 1 : i - 1]
            let old = replicas(for: end)
            let new = newer.replicas(for: end)
            if Set(old) == Set(new) { continue }
            if var last = changes.last, last.range.end == start, last.oldReplicas == old, last.newReplicas == new {
                last.range.end = end
                changes[changes.count - 1] = last
            } else {
                changes.append(OwnershipChange(range: TokenRange(start: start, end: end), oldReplicas: old, newReplicas: new))
            }
        }
        // The first and last change may be one range across the wrap point.
        if changes.count > 1, let first = changes.first, let last = changes.last,
            last.range.end == first.range.start, last.oldReplicas == first.oldReplicas,
            last.newReplicas == first.newReplicas
        {
            changes[0].range.start = last.range.start
            changes.removeLast()
        }
        return changes
    }
}
