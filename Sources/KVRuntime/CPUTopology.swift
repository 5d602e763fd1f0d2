import CKVSystem
import Glibc

/// Which CPUs belong to which NUMA node on this machine.
///
/// Found once at start-up: from libnuma loaded at run time (`dlopen("libnuma.so.1")`, no
/// link-time dependency), else from sysfs (`/sys/devices/system/node/node*/cpulist`), else
/// "one node with every CPU". Only CPUs the process may run on (its affinity mask) are kept.
public struct CPUTopology: Sendable, Equatable, CustomStringConvertible {
    /// One NUMA node and its CPUs, ascending.
    public struct Node: Sendable, Equatable {
        public var id: Int
        public var cpus: [Int]

        public init(id: Int, cpus: [Int]) {
            self.id = id
            self.cpus = cpus
        }
    }

    /// Where the topology came from.
    public enum Source: String, Sendable, Equatable {
        case libnuma, sysfs, fallback, given
    }

    /// Nodes ordered by id. A node without CPUs (memory only) is left out.
    public var nodes: [Node]
    public var source: Source

    public init(nodes: [Node], source: Source = .given) {
        self.nodes = nodes.filter { !$0.cpus.isEmpty }.sorted { $0.id < $1.id }
        self.source = source
    }

    /// `nodeCount` nodes of `coresPerNode` CPUs each, numbered consecutively (for tests and planning).
    public static func uniform(nodes nodeCount: Int, coresPerNode: Int) -> CPUTopology {
        CPUTopology(nodes: (0..<nodeCount).map { n in
            Node(id: n, cpus: Array((n * coresPerNode)..<((n + 1) * coresPerNode)))
        })
    }

    /// Every CPU, node by node.
    public var cpus: [Int] { nodes.flatMap(\.cpus) }
    public var cpuCount: Int { nodes.reduce(0) { $0 + $1.cpus.count } }

    /// The node holding `cpu`, or nil.
    public func node(ofCPU cpu: Int) -> Int? {
        nodes.first { $0.cpus.contains(cpu) }?.id
    }

    public var description: String {
        let parts = nodes.map { "node\($0.id): \($0.cpus.map(String.init).joined(separator: ","))" }
        return "\(source.rawValue) [\(parts.joined(separator: "; "))]"
    }

    /// The machine's topology, found through the fallback chain described on the type.
    public static func detect() -> CPUTopology {
        detect(libnuma: fromLibnuma, sysfs: { fromSysfs() }, allowedCPUs: allowedCPUs())
    }

    /// The fallback chain with its sources injected: the first source that answers wins;
    /// its CPUs are narrowed to `allowedCPUs`; if nothing is left, one node with `allowedCPUs`.
    public static func detect(
        libnuma: () -> CPUTopology?, sysfs: () -> CPUTopology?, allowedCPUs: [Int]
    ) -> CPUTopology {
        let allowed = Set(allowedCPUs)
        for source in 0..<2 {
            guard let found = source == 0 ? libnuma() : sysfs() else { continue }
            let narrowed = CPUTopology(
                nodes: found.nodes.map { Node(id: $0.id, cpus: $0.cpus.filter(allowed.contains)) },
                source: found.source)
            if narrowed.cpuCount > 0 { return narrowed }
        }
        return CPUTopology(nodes: [Node(id: 0, cpus: allowedCPUs.sorted())], source: .fallback)
    }

    /// The topology libnuma reports, or nil when the library is missing or NUMA is unusable.
    public static func fromLibnuma() -> CPUTopology? {
        guard kv_numa_load() != 0 else { return nil }
        let cpuCount = Int(kv_numa_configured_cpus())
        guard cpuCount > 0 else { return nil }
        var byNode: [Int: [Int]] = [:]
        for cpu in 0..<cpuCount {
            let node = Int(kv_numa_node_of_cpu(Int32(cpu)))
            if node >= 0 { byNode[node, default: []].append(cpu) }
        }
        guard !byNode.isEmpty else { return nil }
        return CPUTopology(nodes: byNode.map { Node(id: $0.key, cpus: $0.value) }, source: .libnuma)
    }

    /// The topology sysfs describes under `root` (`node<N>/cpulist` files), or nil.
    public static func fromSysfs(root: String = "/sys/devices/system/node") -> CPUTopology? {
        guard let dir = opendir(root) else { return nil }
        defer { closedir(dir) }
        var nodes: [Node] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("node"), let id = Int(name.dropFirst(4)) else { continue }
            guard let text = readSmallFile("\(root)/\(name)/cpulist"), let cpus = parseCPUList(text) else {
                continue
            }
            nodes.append(Node(id: id, cpus: cpus))
        }
        let topology = CPUTopology(nodes: nodes, source: .sysfs)
        return topology.nodes.isEmpty ? nil : topology
    }

    /// Parses the kernel's CPU list format ("0-3,8,10-11"); nil when malformed. An empty list is `[]`.
    public static func parseCPUList(_ text: String) -> [Int]? {
        let trimmed = text.filter { !$0.isWhitespace }
        if trimmed.isEmpty { return [] }
        var cpus: [Int] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            switch bounds.count {
            case 1:
                guard let cpu = Int(bounds[0]), cpu >= 0 else { return nil }
                cpus.append(cpu)
            case 2:
                guard let low = Int(bounds[0]), let high = Int(bounds[1]), low >= 0, low <= high else { return nil }
                cpus.append(contentsOf: low...high)
            default:
                return nil
            }
        }
        return Array(Set(cpus)).sorted()
    }

    /// The CPUs this process may run on (its affinity mask), or 0..<online CPUs if unknown.
    public static func allowedCPUs() -> [Int] {
        var buffer = [Int32](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { kv_allowed_cpus($0.baseAddress, Int32($0.count)) }
        if n > 0 { return buffer.prefix(Int(n)).map(Int.init) }
        return Array(0..<max(1, Int(kv_online_cpus())))
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { return nil }
        return String(decoding: bytes.prefix(n), as: UTF8.self)
    }
}
