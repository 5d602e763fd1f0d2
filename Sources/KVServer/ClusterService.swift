import KVCluster
import KVCore
import Synchronization

extension ReadConsistency {
    /// The cluster's level for this request (`default`: nil, the node's configured default).
    var level: ConsistencyLevel? {
        switch self {
        case .eventual: .one
        case .strong: .quorum
        case .all: .all
        case .default: nil
        }
    }
}

extension CoordinatorError {
    /// The error as the front ends report it (`quorumNotReached` → HTTP 503 with the count).
    var kvError: KVError {
        switch self {
        case .storage(let e): e
        case .cluster(.quorumNotReached(let needed, let answered)): .quorumNotReached(needed: needed, answered: answered)
        case .cluster(.unavailable(let needed, let alive)): .quorumNotReached(needed: needed, answered: alive)
        }
    }
}

/// The `KeyValueService` of a cluster node: every request goes through the node's
/// `Coordinator` (replicas chosen on the ring, quorums, read repair, hints), so the
/// HTTP item API and RESP speak to the cluster, not to one machine's disk. Once the
/// node has left its cluster (`Node.hasLeft`) every request fails with `KVError.closed`
/// (HTTP 503).
public final class ClusterService: KeyValueService {
    /// The node behind the service.
    public let node: Node
    /// Key and value limits (those of the node's storage).
    public let limits: Limits
    private let accepting = Atomic<Bool>(true)

    public init(node: Node, limits: Limits) {
        self.node = node
        self.limits = limits
    }

    /// The node's wall clock, in milliseconds since the Unix epoch.
    public func nowMillis() -> UInt64 { node.coordinator.clock.nowMillis() }

    /// Reads through the coordinator at `consistency` (`default`: the configured read level).
    public func read(_ key: Key, consistency: ReadConsistency) async throws(KVError) -> Record? {
        guard isAccepting else { throw .closed }
        do throws(CoordinatorError) {
            return try await node.coordinator.read(key, consistency: consistency.level)
        } catch {
            throw error.kvError
        }
    }

    /// Writes through the coordinator at the configured write level.
    public func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?) async throws(KVError) -> Timestamp {
        try await write(key, value: value, expiresAtMillis: expiresAtMillis, consistency: .default)
    }

    /// Writes through the coordinator at `consistency`.
    public func write(_ key: Key, value: Value?, expiresAtMillis: UInt64?, consistency: ReadConsistency) async throws(KVError)
        -> Timestamp
    {
        guard isAccepting else { throw .closed }
        do throws(CoordinatorError) {
            return try await node.coordinator.write(
                key, value: value, expiresAtMillis: expiresAtMillis, consistency: consistency.level)
        } catch {
            throw error.kvError
        }
    }

    /// One timestamp for all items, each item coordinated on its own replica set
    /// (concurrently); the first failure is reported.
    public func writeMany(_ items: [(Key, Value)]) async throws(KVError) -> Timestamp {
        guard isAccepting else { throw .closed }
        let coordinator = node.coordinator
        let timestamp = coordinator.clock.next()
        let failure: KVError? = await withTaskGroup(of: KVError?.self) { group in
            for (key, value) in items {
                group.addTask {
                    do throws(CoordinatorError) {
                        try await coordinator.write(
                            [.init(key: key, record: .value(value, at: timestamp))], token: key.token)
                        return nil
                    } catch {
                        return error.kvError
                    }
                }
            }
            var first: KVError?
            for await result in group where first == nil { first = result }
            return first
        }
        if let failure { throw failure }
        return timestamp
    }

    /// Whether client requests are taken: not stopped, and the node has not left.
    private var isAccepting: Bool { accepting.load(ordering: .relaxed) && !node.hasLeft }

    /// This node's shards and stored entries.
    public func statistics() async -> ServiceStatistics {
        ServiceStatistics(
            shards: node.replica.shards.count, storedEntries: await node.replica.storedEntries(), accepting: isAccepting)
    }

    /// Stops taking requests (the node itself is closed by cancelling its run).
    public func stopAccepting() { accepting.store(false, ordering: .sequentiallyConsistent) }
}

extension ClusterService {
    /// `GET /api/v1/cluster`: the ring and every known node's state as this node sees it,
    /// plus the coordinator's and the hint log's counters. Nodes that are `leaving` or have
    /// `left` are listed with that status (left ones until `leftRetentionMillis` passes).
    /// Cost: O(nodes + vnodes).
    public func describe() async -> [UInt8] {
        let snapshot = node.view.snapshot
        let ownership = snapshot.ring.primaryOwnership
        let coordinator = node.coordinator.statistics
        let hints = await node.hints.counters
        let queued = await node.hints.queued
        var phis: [NodeID: Double] = [:]
        for id in snapshot.states.keys where id != node.id { phis[id] = await node.gossiper.phi(of: id) }
        var json = JSONWriter(capacity: 1024)
        let foreignGossip = await node.gossiper.foreignMessages
        let decommission = await node.decommissionProgress
        json.beginObject()
        json.key("node"); json.string(node.id.name)
        // This node's own decommission, if one was asked for (details: /api/v1/cluster/decommission).
        json.key("decommission"); json.string(decommission?.phase.rawValue ?? "none")
        json.key("cluster_name"); json.string(node.settings.cluster.name)
        json.key("foreign_gossip_dropped"); json.integer(foreignGossip)
        json.key("ring")
        json.beginObject()
        json.key("replication_factor"); json.integer(Int64(snapshot.ring.replicationFactor))
        json.key("members"); json.integer(Int64(snapshot.ring.members.count))
        json.key("vnodes"); json.integer(Int64(snapshot.ring.tokens.count))
        if let pending = snapshot.pendingRing {
            // While a node is leaving: the ring it leaves behind.
            json.key("pending_members"); json.integer(Int64(pending.members.count))
        }
        json.key("ownership_permille")
        json.beginObject()
        for member in snapshot.ring.members {
            json.key(member.id.name); json.integer(Int64((ownership[member.id] ?? 0) * 1000))
        }
        json.endObject()
        json.endObject()
        json.key("nodes")
        json.beginObject()
        for (id, state) in snapshot.states.sorted(by: { $0.key < $1.key }) {
            json.key(id.name)
            json.beginObject()
            json.key("address"); json.string(state.address.description)
            json.key("status"); json.string(state.status.description)
            json.key("up"); json.bool(snapshot.isUp(id))
            json.key("generation"); json.integer(state.generation)
            json.key("heartbeat"); json.integer(state.version)
            json.key("tokens"); json.integer(Int64(state.tokens.count))
            if let rack = state.rack { json.key("rack"); json.string(rack) }
            if let phi = phis[id] { json.key("phi_milli"); json.integer(Int64(min(phi, 1e9) * 1000)) }
            if let since = snapshot.downSinceMillis[id] { json.key("down_since_ms"); json.integer(since) }
            json.endObject()
        }
        json.endObject()
        json.key("coordinator")
        json.beginObject()
        json.key("writes"); json.integer(coordinator.writes)
        json.key("reads"); json.integer(coordinator.reads)
        json.key("unavailable"); json.integer(coordinator.unavailable)
        json.key("read_repairs"); json.integer(coordinator.readRepairs)
        json.key("hints_to_stand_ins"); json.integer(coordinator.hintsToStandIns)
        json.key("hints_kept_locally"); json.integer(coordinator.hintsKeptLocally)
        json.key("skewed_replies"); json.integer(coordinator.skewedReplies)
        json.endObject()
        json.key("hints")
        json.beginObject()
        json.key("stored"); json.integer(hints.stored)
        json.key("delivered"); json.integer(hints.delivered)
        json.key("dropped_full"); json.integer(hints.droppedFull)
        json.key("dropped_expired"); json.integer(hints.droppedExpired)
        json.key("handed_off"); json.integer(hints.handedOff)
        json.key("dropped_left"); json.integer(hints.droppedLeft)
        json.key("queued")
        json.beginObject()
        for (id, count) in queued.sorted(by: { $0.key < $1.key }) { json.key(id.name); json.integer(Int64(count)) }
        json.endObject()
        json.endObject()
        json.endObject()
        return json.bytes
    }
}
