import Foundation
import KVCluster
import KVCore
import KVRuntime
import KVStorage
import KVTransport
import Logging
import Synchronization

/// A wall clock a test can move and skew.
final class TestWallClock: WallClock {
    private let offset = Atomic<Int64>(0)
    init(offsetMillis: Int64 = 0) { offset.store(offsetMillis, ordering: .relaxed) }
    func nowMillis() -> UInt64 { UInt64(Int64(SystemWallClock().nowMillis()) + offset.load(ordering: .relaxed)) }
    func setOffset(_ millis: Int64) { offset.store(millis, ordering: .relaxed) }
}

/// Several `Node`s in this process over an `InMemoryNetwork`, with fast gossip, each
/// in its own temporary data directory (removed by `stop`).
final class TestCluster: @unchecked Sendable {
    static let loops = EventLoopGroup(settings: RuntimeSettings(loopCount: 2, pinThreads: false))

    let network: InMemoryNetwork
    let root: String
    /// Node ids are `<prefix><i>`; node i listens on `mem:<firstPort + i>`.
    let prefix: String
    let firstPort: UInt16
    /// The RPC ports every node is seeded with.
    let seedPorts: [UInt16]
    private(set) var nodes: [Node] = []
    private var runs: [Task<Void, Never>] = []
    let clocks: [TestWallClock]
    let settings: ClusterSettings

    static func settings(replicationFactor: Int = 3) -> ClusterSettings {
        ClusterSettings(
            ring: RingSettings(numTokens: 32, replicationFactor: replicationFactor),
            gossip: GossipSettings(intervalMillis: 40),
            failureDetector: FailureDetectorSettings(
                minStdDeviationMillis: 20, acceptableHeartbeatPauseMillis: 400, firstHeartbeatEstimateMillis: 40,
                maxIntervalMillis: 2000),
            quorum: QuorumSettings(writeTimeoutMillis: 500, readTimeoutMillis: 500),
            hints: HintSettings(deliveryIntervalMillis: 50),
            decommission: DecommissionSettings(announceTimeoutMillis: 5000, exitDelayMillis: 1500))
    }

    static func storage() -> StorageSettings {
        var s = StorageSettings(wal: WALSettings(commitMode: .periodic(milliseconds: 20)))
        s.wal.segmentBytes = 1 << 20
        s.wal.preallocate = false
        s.memtableBytes = 4 << 20
        return s
    }

    /// Starts `count` nodes; node i's clock is skewed by `skewMillis[i]` (default none).
    /// Several clusters may share one `network` with distinct `prefix`es and `firstPort`s.
    init(
        count: Int, settings: ClusterSettings = TestCluster.settings(), skewMillis: [Int64] = [],
        network: InMemoryNetwork = InMemoryNetwork(), prefix: String = "n", firstPort: UInt16 = 100,
        seedPorts: [UInt16]? = nil
    ) async throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kvcluster-\(UUID().uuidString)").path
        self.settings = settings
        self.network = network
        self.prefix = prefix
        self.firstPort = firstPort
        self.seedPorts = seedPorts ?? [firstPort]
        clocks = (0..<count).map { TestWallClock(offsetMillis: $0 < skewMillis.count ? skewMillis[$0] : 0) }
        for i in 0..<count { try await startNode(i) }
    }

    private func nodeSettings(_ i: Int) -> NodeSettings {
        NodeSettings(
            id: NodeID("\(prefix)\(i)"), rpcAddress: NodeAddress(host: "mem", port: firstPort + UInt16(i)),
            seeds: seedPorts.map { NodeAddress(host: "mem", port: $0) }, dataDirectory: root + "/n\(i)",
            storage: Self.storage(), cluster: settings)
    }

    private func startNode(_ i: Int) async throws {
        var logger = Logger(label: "\(prefix)\(i)")
        logger.logLevel = .error
        let node = try await Node.start(
            settings: nodeSettings(i), network: network, loops: [Self.loops.loops[i % 2]], wallClock: clocks[i],
            logger: logger)
        if i < nodes.count { nodes[i] = node } else { nodes.append(node) }
        let run = Task { await node.run() }
        if i < runs.count { runs[i] = run } else { runs.append(run) }
    }

    func address(_ i: Int) -> KVTransport.NodeAddress { nodes[i].rpcAddress.transport }

    /// Stops node i's process-equivalent (cancels its run, closes its storage).
    func stopNode(_ i: Int) async {
        runs[i].cancel()
        await runs[i].value
    }

    /// Waits until node i's `run()` has returned (by itself, e.g. after it left the cluster).
    func waitUntilRunEnds(_ i: Int) async { await runs[i].value }

    /// Starts node i again on its data directory (a restart: a new generation).
    func restartNode(_ i: Int) async throws { try await startNode(i) }

    /// Waits until every running node sees `expectedUp` nodes up and a full ring.
    func waitUntilConverged(nodes indexes: [Int]? = nil, timeout: Duration = .seconds(10)) async throws {
        let which = indexes ?? Array(nodes.indices)
        let describe = {
            which.map { i in
                let s = self.nodes[i].view.snapshot
                return "n\(i): ring \(s.ring.members.map(\.id.name)) live \(s.live.map(\.name).sorted()) states \(s.states.mapValues { "\($0.status)" })"
            }.joined(separator: "; ")
        }
        try await waitFor("convergence", timeout: timeout, details: describe) {
            which.allSatisfy { i in
                let s = self.nodes[i].view.snapshot
                return s.ring.members.count == self.nodes.count && which.allSatisfy { s.isUp(self.nodes[$0].id) }
            }
        }
    }

    /// Stops every node and removes the data.
    func stop() async {
        for i in runs.indices { await stopNode(i) }
        try? FileManager.default.removeItem(atPath: root)
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
func waitFor(
    _ what: String, timeout: Duration = .seconds(10), details: () -> String = { "" },
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimedOut(what: what + " " + details())
}
