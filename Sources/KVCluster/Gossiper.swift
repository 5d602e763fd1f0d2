import KVCore
import KVTransport
import Logging

/// The gossip shell: runs `GossipInstance` rounds every `GossipSettings.intervalMillis`,
/// sends the messages it asks for over the RPC network (one-way), feeds it the messages
/// that arrive, and publishes what it learns into the node's `ClusterView` (a new ring
/// whenever a member's status or tokens change; the live set on every change).
///
/// The protocol state lives in the actor; sending happens outside it (a peer that is
/// slow to connect does not hold up the next round or incoming messages).
public actor Gossiper {
    private var instance: GossipInstance
    private let view: ClusterView
    private let endpoint: any RPCEndpoint
    private let clock: any WallClock
    private let replicationFactor: Int
    private let logger: Logger
    private var random = SystemRandomNumberGenerator()
    private var downSince: [NodeID: UInt64] = [:]

    public init(
        instance: GossipInstance, view: ClusterView, endpoint: any RPCEndpoint, clock: any WallClock,
        replicationFactor: Int, logger: Logger
    ) {
        self.instance = instance
        self.view = view
        self.endpoint = endpoint
        self.clock = clock
        self.replicationFactor = replicationFactor
        self.logger = logger
        Self.publish(instance, downSince: [:], rebuildRing: true, into: view, replicationFactor: replicationFactor)
    }

    /// This node's gossiped state.
    public var localState: EndpointState { instance.localState }

    /// Every known node's state.
    public var membership: Membership { instance.membership }

    /// The phi of a peer now.
    public func phi(of id: NodeID) -> Double { instance.phi(of: id, nowMillis: clock.nowMillis()) }

    /// Messages dropped since start because they came from another cluster (`ClusterSettings.name`).
    public var foreignMessages: UInt64 { instance.foreignMessages }

    /// Changes this node's status (joining → normal, normal → leaving …); spreads with
    /// the next rounds. Returns the version of the change (see `peersBehind(localVersion:)`).
    @discardableResult
    public func announce(_ status: NodeStatus) -> UInt64 {
        let version = instance.updateLocal(status: status)
        Self.publish(instance, downSince: downSince, rebuildRing: true, into: view, replicationFactor: replicationFactor)
        return version
    }

    /// The live peers not yet known to hold `localVersion` of this node's state.
    public func peersBehind(localVersion: UInt64) -> [NodeID] { instance.peersBehind(localVersion: localVersion) }

    /// Runs rounds until the task is cancelled. A node that is `joining` becomes `normal`
    /// once it has heard from a peer (or at once when it has no seeds): with no data to
    /// stream in yet, joining only waits to learn the membership.
    public nonisolated func run(interval: Duration) async {
        while !Task.isCancelled {
            let messages = await tick()
            await send(messages)
            try? await Task.sleep(for: interval)
        }
    }

    /// One round (exposed for tests that drive gossip by hand).
    public func tick() -> [(GossipMessage, NodeAddress)] {
        let now = clock.nowMillis()
        if instance.localState.status == .joining, instance.seeds.isEmpty || instance.membership.states.count > 1 {
            announce(.normal)
            logger.info("\(instance.localID) is now normal")
        }
        return handle(instance.tick(nowMillis: now, using: &random), now: now)
    }

    /// Handles one incoming message; returns the replies to send.
    public func receive(_ message: GossipMessage) -> [(GossipMessage, NodeAddress)] {
        let now = clock.nowMillis()
        return handle(instance.receive(message, nowMillis: now), now: now)
    }

    /// Handles an incoming gossip payload and sends the replies.
    public nonisolated func receive(payload: [UInt8]) async {
        guard let message = try? GossipCodec.decode(payload) else { return }
        let replies = await receive(message)
        await send(replies)
    }

    private func handle(_ directives: [GossipDirective], now: UInt64) -> [(GossipMessage, NodeAddress)] {
        var sends: [(GossipMessage, NodeAddress)] = []
        var ringChanged = false
        var liveChanged = false
        for d in directives {
            switch d {
            case let .send(message, to): sends.append((message, to))
            case let .discovered(state):
                logger.info("discovered \(state.id) at \(state.address) (\(state.status))")
                ringChanged = true
            case let .stateChanged(from, to):
                logger.info("\(to.id): \(from.status) → \(to.status)")
                ringChanged = true
            case let .restarted(state):
                logger.info("\(state.id) restarted (generation \(state.generation))")
                ringChanged = true
            case let .up(id):
                logger.info("\(id) is up")
                downSince[id] = nil
                liveChanged = true
            case let .down(id):
                logger.warning("\(id) is down")
                downSince[id] = now
                liveChanged = true
            case let .forgotten(id):
                downSince[id] = nil
                ringChanged = true
            case let .foreignCluster(id, address, name):
                logger.warning(
                    "ClusterName mismatch from \(id) at \(address): it belongs to cluster '\(name)', this node to '\(instance.clusterName)'; its gossip is dropped"
                )
            }
        }
        if ringChanged || liveChanged {
            Self.publish(instance, downSince: downSince, rebuildRing: ringChanged, into: view, replicationFactor: replicationFactor)
        }
        return sends
    }

    private static func publish(
        _ instance: GossipInstance, downSince: [NodeID: UInt64], rebuildRing: Bool, into view: ClusterView,
        replicationFactor: Int
    ) {
        let ring = rebuildRing ? instance.membership.ring(replicationFactor: replicationFactor) : nil
        let pending = rebuildRing ? instance.membership.pendingRing(replicationFactor: replicationFactor) : nil
        let states = instance.membership.states
        let live = instance.liveNodes
        view.update { snapshot in
            if let ring {
                snapshot.ring = ring
                snapshot.pendingRing = pending
            }
            snapshot.states = states
            snapshot.live = live
            snapshot.downSinceMillis = downSince
        }
    }

    private nonisolated func send(_ messages: [(GossipMessage, NodeAddress)]) async {
        guard !messages.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for (message, address) in messages {
                let payload = GossipCodec.encode(message)
                group.addTask {
                    try? await self.endpoint.send(address.transport, method: ClusterMethod.gossip.rawValue, payload: payload)
                }
            }
        }
    }
}
