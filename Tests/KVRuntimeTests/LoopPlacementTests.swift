import Testing
@testable import KVRuntime

@Suite struct LoopPlacementTests {
    @Test func twoSocketsOfEightCoresGetLoopsNodeByNode() {
        let topology = CPUTopology.uniform(nodes: 2, coresPerNode: 8)
        let plan = LoopPlacement.plan(loopCount: 16, topology: topology)
        #expect(plan.slots.map(\.node) == Array(repeating: 0, count: 8) + Array(repeating: 1, count: 8))
        #expect(plan.slots.map(\.cpu) == Array(0..<16))
        #expect(plan.slots.map(\.loop) == Array(0..<16))
    }

    @Test func fewerLoopsThanCoresAreSpreadAcrossSockets() {
        let plan = LoopPlacement.plan(loopCount: 4, topology: .uniform(nodes: 2, coresPerNode: 8))
        #expect(plan.slots.map(\.node) == [0, 0, 1, 1])
        #expect(plan.slots.map(\.cpu) == [0, 1, 8, 9])
    }

    @Test func unevenNodesGetLoopsInProportion() {
        let topology = CPUTopology(nodes: [
            .init(id: 0, cpus: [0, 1, 2, 3]), .init(id: 1, cpus: [4, 5]),
            .init(id: 2, cpus: [6]), .init(id: 3, cpus: [7]),
        ])
        let all = LoopPlacement.plan(loopCount: 8, topology: topology)
        #expect(all.slots.map(\.node) == [0, 0, 0, 0, 1, 1, 2, 3])
        #expect(all.slots.map(\.cpu) == Array(0..<8))
        let three = LoopPlacement.plan(loopCount: 3, topology: topology)
        #expect(three.slots.map(\.node) == [0, 0, 1])
        #expect(three.slots.map(\.cpu) == [0, 1, 4])
    }

    @Test func moreLoopsThanCoresShareCoresWithinTheNode() {
        let plan = LoopPlacement.plan(loopCount: 4, topology: .uniform(nodes: 1, coresPerNode: 2))
        #expect(plan.slots.map(\.cpu) == [0, 1, 0, 1])
        #expect(Set(plan.slots.map(\.node)) == [0])
    }

    @Test func memoryOnlyNodesAndZeroLoopsAreHandled() {
        let topology = CPUTopology(nodes: [.init(id: 0, cpus: []), .init(id: 1, cpus: [2, 3])])
        #expect(topology.nodes.map(\.id) == [1])
        let plan = LoopPlacement.plan(loopCount: 0, topology: topology)
        #expect(plan.slots == [.init(loop: 0, node: 1, cpu: 2)])
    }

    @Test func thisMachineGetsOneLoopPerCPU() {
        let topology = CPUTopology.detect()
        let plan = LoopPlacement.plan(loopCount: topology.cpuCount, topology: topology)
        #expect(plan.slots.count == topology.cpuCount)
        #expect(Set(plan.slots.map(\.cpu)) == Set(topology.cpus))
        #expect(plan.slots.allSatisfy { topology.node(ofCPU: $0.cpu) == $0.node })
    }
}
