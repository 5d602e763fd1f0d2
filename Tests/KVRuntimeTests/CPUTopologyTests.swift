import Foundation
import Testing
@testable import KVRuntime

@Suite struct CPUTopologyTests {
    @Test func parsesKernelCPULists() {
        #expect(CPUTopology.parseCPUList("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(CPUTopology.parseCPUList("5") == [5])
        #expect(CPUTopology.parseCPUList("\n") == [])
        #expect(CPUTopology.parseCPUList("3-1") == nil)
        #expect(CPUTopology.parseCPUList("a-b") == nil)
        #expect(CPUTopology.parseCPUList("1,,2") == nil)
    }

    @Test func fallbackChainPrefersLibnumaThenSysfsThenOneNode() {
        let numa = CPUTopology(nodes: [.init(id: 0, cpus: [0, 1]), .init(id: 1, cpus: [2, 3])], source: .libnuma)
        let sysfs = CPUTopology(nodes: [.init(id: 0, cpus: [0, 1, 2, 3])], source: .sysfs)
        let all = [0, 1, 2, 3]
        #expect(CPUTopology.detect(libnuma: { numa }, sysfs: { sysfs }, allowedCPUs: all) == numa)
        #expect(CPUTopology.detect(libnuma: { nil }, sysfs: { sysfs }, allowedCPUs: all) == sysfs)
        let fallback = CPUTopology.detect(libnuma: { nil }, sysfs: { nil }, allowedCPUs: [1, 0])
        #expect(fallback.source == .fallback)
        #expect(fallback.nodes == [.init(id: 0, cpus: [0, 1])])
    }

    @Test func topologyIsNarrowedToTheAllowedCPUs() {
        let numa = CPUTopology(nodes: [.init(id: 0, cpus: [0, 1]), .init(id: 1, cpus: [2, 3])], source: .libnuma)
        let narrowed = CPUTopology.detect(libnuma: { numa }, sysfs: { nil }, allowedCPUs: [2, 3])
        #expect(narrowed.nodes == [.init(id: 1, cpus: [2, 3])])
        // A source whose CPUs are all disallowed is skipped.
        let skipped = CPUTopology.detect(libnuma: { numa }, sysfs: { nil }, allowedCPUs: [7])
        #expect(skipped.source == .fallback)
        #expect(skipped.cpus == [7])
    }

    @Test func readsAFakeSysfsTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kv-sysfs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for (node, list) in [(0, "0-3\n"), (1, "4-5,7\n"), (2, "\n")] {
            let dir = root.appendingPathComponent("node\(node)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try list.write(to: dir.appendingPathComponent("cpulist"), atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("power"), withIntermediateDirectories: true)
        let topology = try #require(CPUTopology.fromSysfs(root: root.path))
        #expect(topology.source == .sysfs)
        #expect(topology.nodes == [.init(id: 0, cpus: [0, 1, 2, 3]), .init(id: 1, cpus: [4, 5, 7])])
        #expect(CPUTopology.fromSysfs(root: root.appendingPathComponent("missing").path) == nil)
    }

    @Test func thisMachineHasATopology() {
        let topology = CPUTopology.detect()
        #expect(topology.cpuCount >= 1)
        #expect(Set(topology.cpus).isSubset(of: Set(CPUTopology.allowedCPUs())))
    }
}
