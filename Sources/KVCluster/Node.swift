import KVCore
import KVRuntime
import KVStorage
import KVTransport
import Logging
import Synchronization

/// One cluster node, the composition root: it opens the shards and the hint log,
/// joins the RPC network, and owns the coordinator, the gossiper and the hint
/// delivery worker. `run()` runs the node's long loops (gossip rounds, hint delivery)
/// as children of one task group; cancelling the task that runs it is the shutdown,
/// after which the endpoint and every engine are closed.
///
/// A node leaves the cluster with `decommission()` (see `Node+Decommission.swift`):
/// it runs inside `run()`, and `run()` returns once the node has left.
///
/// Starting costs each shard's recovery (WAL replay) plus one scan of the hint log.
public actor Node {
    /// The node's id.
    public nonisolated let id: NodeID
    /// Where the node actually listens for RPC (the bound port when 0 was asked for).
    public nonisolated let rpcAddress: NodeAddress
    /// Runs client requests against replicas.
    public nonisolated let coordinator: Coordinator
    /// The node's current picture of the cluster.
    public nonisolated let view: ClusterView
    /// Membership and failure detection.
    public nonisolated let gossiper: Gossiper
    /// Hands stored hints to recovered replicas.
    public nonisolated let hintWorker: HintDeliveryWorker
    /// This node's own data.
    public nonisolated let replica: LocalReplica
    /// This node's durable hint log.
    public nonisolated let hints: HintStore
    /// The settings the node started with.
    public nonisolated let settings: NodeSettings
    let endpoint: any RPCEndpoint
    let logger: Logger
    private var closed = false
    /// The decommission asked for, if any (its latest progress).
    var decommissionState: DecommissionProgress?
    /// Callers of `waitForDecommission()` until it finishes.
    var decommissionWaiters: [CheckedContinuation<DecommissionProgress, Never>] = []
    /// Decommission requests, performed one at a time by `run()`.
    nonisolated let decommissionRequests = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// Set once the node has gossiped `left`: it takes no more client requests.
    private nonisolated let leftFlag = Atomic<Bool>(false)

    private init(
        settings: NodeSettings, rpcAddress: NodeAddress, coordinator: Coordinator, view: ClusterView,
        gossiper: Gossiper, hintWorker: HintDeliveryWorker, endpoint: any RPCEndpoint, logger: Logger
    ) {
        self.id = settings.id
        self.settings = settings
        self.rpcAddress = rpcAddress
        self.coordinator = coordinator
        self.view = view
        self.gossiper = gossiper
        self.hintWorker = hintWorker
        self.replica = coordinator.replica
        self.hints = coordinator.hints
        self.endpoint = endpoint
        self.logger = logger
    }

    /// Which replica requests are answered in the RPC connection's read loop: when every
    /// shard and the hint log live on the one loop the request arrived on, a read or ping
    /// never waits, and neither does a write in `periodic` commit mode (a `sync` write
    /// waits for an fsync, so it gets a task and later frames go on meanwhile).
    static func inlinePolicy(loops: [EventLoop], commitMode: CommitMode) -> RPCInlinePolicy {
        guard let loop = loops.first, loops.allSatisfy({ $0 === loop }) else { return { _ in false } }
        var methods: Set<UInt16> = [ClusterMethod.replicaRead.rawValue, ClusterMethod.ping.rawValue]
        if commitMode != .sync {
            methods.formUnion([ClusterMethod.replicaWrite.rawValue, ClusterMethod.hintDelivery.rawValue])
        }
        let inline = methods
        return { method in loop.inEventLoop && inline.contains(method) }
    }

    /// Opens the node's storage under `settings.dataDirectory` (one shard per loop of
    /// `loops`, the hint log on the first loop), bumps and records its generation, joins
    /// `network` at `settings.rpcAddress` and starts as `joining`. Call `run()` next.
    ///
    /// Throws `KVError.invalidArgument` when the data directory belongs to a node that
    /// was decommissioned (`DECOMMISSIONED` is there): it must not rejoin with that data;
    /// wipe the directory to add the machine again.
    public static func start(
        settings: NodeSettings, network: any RPCNetwork, loops: [EventLoop],
        wallClock: any WallClock = SystemWallClock(), logger: Logger
    ) async throws(KVError) -> Node {
        let logger = logger
        if let record = DecommissionFile.read(dataDirectory: settings.dataDirectory) {
            throw .invalidArgument(
                "the node in \(settings.dataDirectory) was decommissioned and left its cluster (\(DecommissionFile.fileName): "
                    + "\(record)); it must not rejoin with this data: wipe the directory to start it as a new node")
        }
        let shards = try await Shard.openAll(
            dataDirectory: settings.dataDirectory, loops: loops, storage: settings.storage, wallClock: wallClock,
            logger: logger)
        let replica = LocalReplica(shards: shards)
        let hintEngine: StorageEngine
        do throws(KVError) {
            var hintStorage = settings.storage
            // A hint holds a whole entry plus its header, so it may exceed the value limit by a little.
            hintStorage.limits.maxValueBytes += settings.storage.limits.maxKeyBytes + 64
            hintStorage.memtableBytes = min(hintStorage.memtableBytes, 16 << 20)
            hintEngine = try await Shard.openEngine(
                directory: settings.dataDirectory + "/hints", settings: hintStorage, clock: wallClock, logger: logger,
                loop: loops[0])
        } catch {
            await replica.close()
            throw error
        }
        let hints: HintStore
        do throws(KVError) {
            hints = try await HintStore.open(engine: hintEngine, policy: HintPolicy(settings: settings.cluster.hints))
        } catch {
            await hintEngine.close()
            await replica.close()
            throw error
        }
        let newest = await replica.newestTimestamp()
        let clock = NodeClock(
            wall: wallClock, maxForwardDriftMillis: settings.cluster.quorum.maxClockDriftMillis, last: newest)
        let view = ClusterView(local: settings.id, replicationFactor: settings.cluster.ring.replicationFactor)
        let service = ReplicaService(local: settings.id, replica: replica, hints: hints, clock: clock, view: view)

        let endpoint: any RPCEndpoint
        do {
            endpoint = try await network.join(
                settings.rpcAddress.transport, handler: { request in try await service.handle(request) },
                runsInline: inlinePolicy(loops: loops, commitMode: settings.storage.commitMode))
        } catch {
            await hints.close()
            await replica.close()
            throw .io(operation: "listen (\(error))", path: settings.rpcAddress.description, errno: 0)
        }
        let bound = NodeAddress(endpoint.address)

        let generation = GossipInstance.nextGeneration(
            previous: GenerationFile.read(dataDirectory: settings.dataDirectory), nowMillis: wallClock.nowMillis())
        try GenerationFile.write(generation, dataDirectory: settings.dataDirectory)
        let local = EndpointState(
            id: settings.id, generation: generation, status: .joining, address: bound, rack: settings.rack,
            tokens: Ring.defaultTokens(for: settings.id, count: settings.cluster.ring.numTokens))
        let instance = GossipInstance(
            local: local, seeds: settings.seeds, clusterName: settings.cluster.name, settings: settings.cluster.gossip,
            detectorSettings: settings.cluster.failureDetector)
        let gossiper = Gossiper(
            instance: instance, view: view, endpoint: endpoint, clock: wallClock,
            replicationFactor: settings.cluster.ring.replicationFactor, logger: logger)
        service.gossiper.withLock { $0 = gossiper }

        let coordinator = Coordinator(
            local: settings.id, view: view, replica: replica, hints: hints, clock: clock, settings: settings.cluster,
            endpoint: endpoint, logger: logger)
        let worker = HintDeliveryWorker(
            store: hints, view: view, endpoint: endpoint, clock: wallClock,
            timeout: .milliseconds(Int64(settings.cluster.quorum.writeTimeoutMillis)), logger: logger)
        logger.info("node \(settings.id) listening for RPC on \(bound), generation \(generation)")
        return Node(
            settings: settings, rpcAddress: bound, coordinator: coordinator, view: view, gossiper: gossiper,
            hintWorker: worker, endpoint: endpoint, logger: logger)
    }

    /// Runs gossip, hint delivery and any decommission asked for until the calling task
    /// is cancelled or the node has left the cluster, then closes the node (endpoint,
    /// hint log, shards).
    public nonisolated func run() async {
        let gossipInterval = Duration.milliseconds(Int64(settings.cluster.gossip.intervalMillis))
        let hintInterval = Duration.milliseconds(Int64(settings.cluster.hints.deliveryIntervalMillis))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.gossiper.run(interval: gossipInterval) }
            group.addTask { await self.hintWorker.run(interval: hintInterval) }
            // Ends when the task is cancelled (the stream then yields nil) or once the node has left.
            for await _ in decommissionRequests.stream {
                await performDecommission()
                if hasLeft { break }
            }
            group.cancelAll()
        }
        await close()
    }

    /// True once this node has gossiped `left` (after a decommission): it takes no more
    /// client requests and its `run()` is ending. One atomic load.
    public nonisolated var hasLeft: Bool { leftFlag.load(ordering: .acquiring) }

    /// Marks the node as left (client requests are refused from now on).
    func markLeft() { leftFlag.store(true, ordering: .releasing) }

    /// Closes the endpoint, the hint log and every shard. Idempotent.
    public func close() async {
        guard !closed else { return }
        closed = true
        await endpoint.close()
        await hints.close()
        await replica.close()
        logger.info("node \(id) closed")
    }

    /// The Merkle tree of `range` over this node's data (see `VnodeRange`).
    public nonisolated func merkleTree(of range: TokenRange) async throws(KVError) -> MerkleTree {
        try await VnodeRange(range: range, replica: replica, depth: settings.cluster.antiEntropy.merkleDepth).buildTree()
    }
}
