import KVCore

/// How a ring chooses the N replicas of a token: walk clockwise from the token's
/// vnode, taking each node the first time it is met, and prefer nodes on racks not
/// yet used (Cassandra's NetworkTopologyStrategy within one data centre).
///
/// When fewer racks exist than replicas, the remaining places are filled with the
/// skipped nodes in the order the walk met them. A node with no rack counts as a
/// rack of its own, so a ring without racks reduces to "the first N distinct nodes".
public enum ReplicaPlacement {
    /// The replicas for every vnode of a ring, as member indices, in preference order.
    ///
    /// - Parameters:
    ///   - owners: the member index owning each vnode, in token order.
    ///   - rackOf: each member's rack key (a distinct value per rack).
    ///   - replicationFactor: N; capped at the number of members.
    /// - Returns: `n = min(N, members)` and a flat table of `V × n` member indices:
    ///   vnode `i`'s replicas are `table[i*n ..< (i+1)*n]` (one allocation, not V).
    /// - Complexity: O(V × k) where k is how far a walk goes to find N nodes on
    ///   distinct racks (about N × members / racks vnodes on a balanced ring).
    static func replicaTable(owners: [Int32], rackOf: [Int], replicationFactor: Int) -> (n: Int, table: [Int32]) {
        let memberCount = rackOf.count
        let n = min(replicationFactor, memberCount)
        guard n > 0, !owners.isEmpty else { return (0, []) }
        let rackCount = Set(rackOf).count
        let distinctRacksWanted = min(n, rackCount)
        var result: [Int32] = []
        result.reserveCapacity(owners.count * n)
        // Scratch marks reused across walks (stamped with the walk number to avoid clearing).
        var memberSeen = [Int](repeating: -1, count: memberCount)
        var rackUsed = [Int](repeating: -1, count: (rackOf.max() ?? 0) + 1)
        var chosen: [Int32] = []
        var skipped: [Int32] = []
        for start in owners.indices {
            chosen.removeAll(keepingCapacity: true)
            skipped.removeAll(keepingCapacity: true)
            var racksChosen = 0
            var i = start
            for _ in 0..<owners.count {
                let member = Int(owners[i])
                if memberSeen[member] != start {
                    memberSeen[member] = start
                    let rack = rackOf[member]
                    if rackUsed[rack] != start {
                        rackUsed[rack] = start
                        racksChosen += 1
                        chosen.append(Int32(member))
                    } else {
                        skipped.append(Int32(member))
                    }
                    // Done once every wanted rack is represented and enough nodes were met.
                    if racksChosen >= distinctRacksWanted && chosen.count + skipped.count >= n { break }
                }
                i += 1
                if i == owners.count { i = 0 }
            }
            let fromChosen = min(n, chosen.count)
            result.append(contentsOf: chosen.prefix(fromChosen))
            result.append(contentsOf: skipped.prefix(n - fromChosen))
        }
        return (n, result)
    }
}
