/// Which core and NUMA node each event loop of a group runs on. A pure function of the
/// topology and the loop count, so it is tested against made-up machines.
///
/// Loops are shared out to nodes in proportion to their CPUs (largest remainder, ties to
/// the lower node id) and numbered node by node, so loops `0..<k` sit on the first node,
/// the next ones on the second, and so on. Within a node each loop gets its own CPU; only
/// when there are more loops than CPUs do loops share CPUs (round-robin within the node).
public struct LoopPlacement: Sendable, Equatable {
    /// Where one loop runs.
    public struct Slot: Sendable, Equatable {
        public var loop: Int
        public var node: Int
        public var cpu: Int

        public init(loop: Int, node: Int, cpu: Int) {
            self.loop = loop
            self.node = node
            self.cpu = cpu
        }
    }

    /// One slot per loop, in loop order.
    public var slots: [Slot]

    /// The placement of `loopCount` loops (at least one) on `topology`.
    public static func plan(loopCount requested: Int, topology: CPUTopology) -> LoopPlacement {
        let loopCount = max(1, requested)
        let nodes = topology.nodes.filter { !$0.cpus.isEmpty }
        guard !nodes.isEmpty else {
            return LoopPlacement(slots: (0..<loopCount).map { Slot(loop: $0, node: 0, cpu: 0) })
        }
        let total = nodes.reduce(0) { $0 + $1.cpus.count }
        // Largest-remainder apportionment of loops to nodes by CPU count.
        var quotas = nodes.map { loopCount * $0.cpus.count / total }
        let remainders = nodes.indices.map { i in (index: i, rest: loopCount * nodes[i].cpus.count % total) }
        var left = loopCount - quotas.reduce(0, +)
        for entry in remainders.sorted(by: { $0.rest != $1.rest ? $0.rest > $1.rest : $0.index < $1.index }) {
            if left == 0 { break }
            quotas[entry.index] += 1
            left -= 1
        }
        var slots: [Slot] = []
        slots.reserveCapacity(loopCount)
        for (i, node) in nodes.enumerated() {
            for k in 0..<quotas[i] {
                slots.append(Slot(loop: slots.count, node: node.id, cpu: node.cpus[k % node.cpus.count]))
            }
        }
        return LoopPlacement(slots: slots)
    }
}
