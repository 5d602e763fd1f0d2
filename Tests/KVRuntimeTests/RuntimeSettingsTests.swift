import Testing
@testable import KVRuntime

@Suite struct RuntimeSettingsTests {
    /// One loop per CPU, except on machines with at most 2 CPUs, which get one.
    @Test func defaultLoopCountLeavesSmallMachinesOneLoop() {
        #expect(RuntimeSettings.defaultLoopCount(cpuCount: 1) == 1)
        #expect(RuntimeSettings.defaultLoopCount(cpuCount: 2) == 1)
        #expect(RuntimeSettings.defaultLoopCount(cpuCount: 3) == 3)
        #expect(RuntimeSettings.defaultLoopCount(cpuCount: 16) == 16)
    }

    @Test func groupUsesTheDefaultWhenNoCountIsSet() {
        let topology = CPUTopology.uniform(nodes: 1, coresPerNode: 2)
        let small = EventLoopGroup(settings: RuntimeSettings(pinThreads: false), topology: topology)
        defer { small.shutdown() }
        #expect(small.loops.count == 1)
        let four = EventLoopGroup(
            settings: RuntimeSettings(pinThreads: false), topology: .uniform(nodes: 1, coresPerNode: 4))
        defer { four.shutdown() }
        #expect(four.loops.count == 4)
    }
}
