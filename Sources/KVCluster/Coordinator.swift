import KVCore
import KVStorage
import KVTransport
import Logging
import Synchronization

/// Why a coordinated request failed.
public enum CoordinatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not enough replicas answered (HTTP 503, with the count).
    case cluster(ClusterError)
    /// The local storage refused the request (bad input, closed, I/O).
    case storage(KVError)

    public var description: String {
        switch self {
        case let .cluster(e): e.description
        case let .storage(e): e.description
        }
    }
}

/// Counters of the coordinator since the node started.
public struct CoordinatorCounters: Sendable, Equatable {
    public var writes: UInt64 = 0
    public var reads: UInt64 = 0
    /// Requests that failed for want of replicas.
    public var unavailable: UInt64 = 0
    /// Replicas sent the newest record after a divergent read.
    public var readRepairs: UInt64 = 0
    /// Writes handed to a stand-in node as a hint for a down replica.
    public var hintsToStandIns: UInt64 = 0
    /// Hints the coordinator kept itself (a replica failed or had no stand-in).
    public var hintsKeptLocally: UInt64 = 0
    /// Read replies ignored because their timestamp was too far in the future.
    public var skewedReplies: UInt64 = 0

    public init() {}
}

/// The coordinator: any node takes any request and runs it against the key's replicas.
///
/// - Writes get one timestamp from this node's hybrid logical clock and are sent to
///   every natural replica that is up (a down one's write goes to the next healthy node
///   clockwise as a hint, or is kept as a hint here); the reply comes after W acks
///   (`one` 1, `quorum` ⌊N/2⌋+1, `all` N). Only natural replicas count: a stand-in's
///   ack does not (so a quorum read always overlaps a quorum write). A replica that
///   fails or times out gets a hint kept by the coordinator. Deletes are tombstone
///   writes with the same rules. A write reported failed may still have reached some
///   replicas (as in Dynamo and Cassandra).
/// - While a node is leaving, a write whose range it gives up also goes to the pending
///   replica that gains the range (`ClusterView.Snapshot.pendingReplicas(for:)`), so no
///   write accepted during its streaming is missing afterwards; the write then needs
///   W + (pending count) acks, natural and pending alike
///   (`ConsistencyLevel.requiredWriteAcks(replicas:pending:)`). A pending replica that
///   is down or fails gets a hint kept by the coordinator.
/// - Reads go to R replicas in `Ring.readOrder` (this node first when it is one; at
///   `one` a local replica is read in place with no message); a failed replica is
///   replaced by the next. The newest record wins (`Record.newest`); replicas that
///   answered with something older are sent the newest (read repair), and a quorum
///   read waits for those repairs (`QuorumSettings.blockingReadRepair`).
/// - Clock skew: a read reply with a timestamp more than `maxClockDriftMillis` ahead
///   of this node's wall clock is treated as a failed replica (neither returned nor
///   used to repair), and replicas reject writes stamped that far ahead; so a node
///   whose clock runs far ahead cannot make its writes win (see `NodeClock`).
///
/// Cost per request: one lock for the ring snapshot and one RPC per remote replica; the
/// local replica is called directly. A write starts no task (remote answers are recorded
/// by completion callbacks, `RPCEndpoint.start`); a read at R = 2 starts none either.
public final class Coordinator: Sendable {
    public let local: NodeID
    public let view: ClusterView
    public let replica: LocalReplica
    public let hints: HintStore
    public let clock: NodeClock
    public let settings: ClusterSettings
    let endpoint: any RPCEndpoint
    let logger: Logger
    private let counters = Mutex(CoordinatorCounters())

    public init(
        local: NodeID, view: ClusterView, replica: LocalReplica, hints: HintStore, clock: NodeClock,
        settings: ClusterSettings, endpoint: any RPCEndpoint, logger: Logger
    ) {
        self.local = local
        self.view = view
        self.replica = replica
        self.hints = hints
        self.clock = clock
        self.settings = settings
        self.endpoint = endpoint
        self.logger = logger
    }

    /// Counters since start.
    public var statistics: CoordinatorCounters { counters.withLock { $0 } }

    // MARK: Writes

    /// Writes `value` (a tombstone when nil) for `key` at `consistency` (default from
    /// settings) and returns its timestamp once enough replicas acknowledged.
    public func write(
        _ key: Key, value: Value?, expiresAtMillis: UInt64? = nil, consistency: ConsistencyLevel? = nil
    ) async throws(CoordinatorError) -> Timestamp {
        let timestamp = clock.next()
        let record: Record =
            value.map { .value($0, at: timestamp, expiresAtMillis: expiresAtMillis) } ?? .tombstone(at: timestamp)
        try await write([Entry(key: key, record: record)], token: key.token, consistency: consistency)
        return timestamp
    }

    /// Writes entries that share one replica set (the same token, or a caller that
    /// grouped them), all already stamped.
    public func write(
        _ entries: [Entry], token: Token, consistency: ConsistencyLevel? = nil
    ) async throws(CoordinatorError) {
        for e in entries {
            do throws(KVError) {
                try replica.shards[0].engine.settings.limits.check(key: e.key)
                if let v = e.record.value { try replica.shards[0].engine.settings.limits.check(value: v) }
            } catch {
                throw .storage(error)
            }
        }
        counters.withLock { $0.writes += 1 }
        let snapshot = view.snapshot
        let replicas = snapshot.ring.replicas(for: token)
        let pending = snapshot.pendingReplicas(for: token)
        let level = consistency ?? settings.quorum.writeConsistency
        let required = level.requiredWriteAcks(replicas: replicas.count, pending: pending.count)
        guard !replicas.isEmpty else {
            counters.withLock { $0.unavailable += 1 }
            throw .cluster(.unavailable(needed: max(1, required), alive: 0))
        }
        // Success as soon as W (+ pending) acks are in; failure only once every replica
        // answered or timed out, so the error says how many did answer.
        let targets = pending.isEmpty ? replicas : replicas + pending
        let round = ReplicaRound(WriteTracker(replicas: targets, required: required)) { t in
            t.acknowledged >= t.required || t.isComplete ? t.result : nil
        }
        let timeout = Duration.milliseconds(Int64(settings.quorum.writeTimeoutMillis))

        // Down replicas: counted as failed at once; their write goes to a stand-in or stays here as a hint.
        if !replicas.allSatisfy(snapshot.isUp) {
            let now = clock.nowMillis()
            var standInFor: [NodeID: NodeID] = [:]
            for t in snapshot.ring.writeTargets(for: token, isUp: snapshot.isUp) {
                if let down = t.hintFor { standInFor[down] = t.node }
            }
            for r in replicas where !snapshot.isUp(r) {
                round.update { $0.recordFailure(from: r, reason: "down") }
                let downSince = snapshot.downSinceMillis[r] ?? now
                if let standIn = standInFor[r], let address = snapshot.address(of: standIn), standIn != local {
                    counters.withLock { $0.hintsToStandIns += 1 }
                    let payload = ClusterCodec.encode(ReplicaWrite(entries: entries, hintFor: r))
                    await endpoint.start(
                        address.transport, method: ClusterMethod.replicaWrite.rawValue, payload: payload, timeout: timeout
                    ) { [self] result in
                        if case .failure = result { LoopTask.start { await self.keepHint(entries, for: r, downSince: downSince) } }
                    }
                } else {
                    Task { await keepHint(entries, for: r, downSince: downSince) }
                }
            }
        }
        // Down pending replicas: failed at once, hinted here (no stand-in: they are not replicas yet).
        for r in pending where !snapshot.isUp(r) {
            round.update { $0.recordFailure(from: r, reason: "down") }
            let downSince = snapshot.downSinceMillis[r] ?? clock.nowMillis()
            Task { await keepHint(entries, for: r, downSince: downSince) }
        }
        // Up replicas, natural and pending: the remote ones first, by RPC whose answers are
        // recorded as they come (no task per replica); then the local one, in place.
        let payload = ClusterCodec.encode(ReplicaWrite(entries: entries))
        var applyLocally = false
        for r in targets where snapshot.isUp(r) {
            if r == local {
                applyLocally = true
            } else if let address = snapshot.address(of: r) {
                await endpoint.start(
                    address.transport, method: ClusterMethod.replicaWrite.rawValue, payload: payload, timeout: timeout
                ) { [self] result in recordRemoteWrite(result, from: r, entries: entries, round: round) }
            } else {
                round.update { $0.recordFailure(from: r, reason: "no address") }
            }
        }
        // A `sync` local write waits here for its fsync while the remote ones go on.
        if applyLocally { await applyLocal(entries, round: round) }
        let outcome = await round.wait()
        if case .failure(let error) = outcome {
            counters.withLock { $0.unavailable += 1 }
            throw .cluster(error)
        }
    }

    /// Applies a write to this node's replica and records the outcome.
    private func applyLocal(_ entries: [Entry], round: ReplicaRound<WriteTracker, Result<Void, ClusterError>>) async {
        do throws(KVError) {
            try await replica.apply(entries)
            round.update { $0.recordAck(from: local) }
        } catch {
            round.update { $0.recordFailure(from: local, reason: error.description) }
        }
    }

    /// Records a remote replica's answer to a write; a failure leaves a hint here.
    private func recordRemoteWrite(
        _ result: Result<[UInt8], TransportError>, from r: NodeID, entries: [Entry],
        round: ReplicaRound<WriteTracker, Result<Void, ClusterError>>
    ) {
        switch result {
        case .success:
            round.update { $0.recordAck(from: r) }
        case .failure(let error):
            round.update { $0.recordFailure(from: r, reason: error.description) }
            // A clock-skew rejection is final: a hint would be rejected the same way.
            if case .remote(let message) = error, message.contains("clock skew") { return }
            LoopTask.start { await self.keepHint(entries, for: r, downSince: nil) }
        }
    }

    private func keepHint(_ entries: [Entry], for target: NodeID, downSince: UInt64?) async {
        counters.withLock { $0.hintsKeptLocally += 1 }
        do throws(KVError) {
            try await hints.store(entries, for: target, downSinceMillis: downSince, nowMillis: clock.nowMillis())
        } catch {
            logger.warning("cannot store a hint for \(target): \(error)")
        }
    }

    // MARK: Reads

    private struct ReadState: Sendable {
        var tracker: ReadTracker
        /// Replicas in read order not asked yet (asked when an asked one fails).
        var unsent: [NodeID]
    }

    /// The newest record for `key` among `consistency`'s worth of replicas (default from
    /// settings); nil when none has one. May be a tombstone or expired: the caller decides
    /// what is visible.
    public func read(_ key: Key, consistency: ConsistencyLevel? = nil) async throws(CoordinatorError) -> Record? {
        counters.withLock { $0.reads += 1 }
        let token = key.token
        let snapshot = view.snapshot
        let order = snapshot.ring.readOrder(for: token, local: local, isUp: snapshot.isUp)
        let level = consistency ?? settings.quorum.readConsistency
        let required = level.requiredReplies(replicationFactor: order.count)
        guard !order.isEmpty else {
            counters.withLock { $0.unavailable += 1 }
            throw .cluster(.unavailable(needed: max(1, required), alive: 0))
        }
        // `one` with a local replica: read in place, no message.
        if required == 1, order[0] == local {
            do throws(KVError) { return try await replica.get(key) } catch { throw .storage(error) }
        }
        let first = Array(order.prefix(required))
        let round = ReplicaRound(
            ReadState(tracker: ReadTracker(replicas: order, required: required), unsent: Array(order.dropFirst(required)))
        ) { s in
            s.tracker.answered >= s.tracker.required || s.tracker.isComplete ? s.tracker.result : nil
        }
        let payload = ClusterCodec.encodeRead(key)
        // Every replica but the last is asked in a task of its own; the local one (a memory
        // or cache read, usually) and then the last remote one in this task: at R = 2 a read
        // starts no task at all.
        let remote = first.filter { $0 != local }
        for r in remote.dropLast() { ask(r, key: key, payload: payload, snapshot: snapshot, round: round) }
        if first.contains(local) { await query(local, key: key, payload: payload, snapshot: snapshot, round: round) }
        if let last = remote.last { await query(last, key: key, payload: payload, snapshot: snapshot, round: round) }
        let outcome = await round.wait()
        switch outcome {
        case .failure(let error):
            counters.withLock { $0.unavailable += 1 }
            throw .cluster(error)
        case .success(let newest):
            guard let newest else { return nil }
            let stale = round.state.tracker.repairs
            if !stale.isEmpty {
                counters.withLock { $0.readRepairs += UInt64(stale.count) }
                let entry = Entry(key: key, record: newest)
                if settings.quorum.blockingReadRepair && level != .one {
                    await repair(stale, with: entry, snapshot: snapshot)
                } else {
                    Task { await repair(stale, with: entry, snapshot: snapshot) }
                }
            }
            return newest
        }
    }

    /// Asks replica `r` for `key` in a task of its own.
    private func ask(
        _ r: NodeID, key: Key, payload: [UInt8], snapshot: ClusterView.Snapshot,
        round: ReplicaRound<ReadState, Result<Record?, ClusterError>>
    ) {
        LoopTask.start { [self] in await query(r, key: key, payload: payload, snapshot: snapshot, round: round) }
    }

    /// Asks replica `r` for `key` and records the outcome; a failure asks the next unsent replica.
    private func query(
        _ r: NodeID, key: Key, payload: [UInt8], snapshot: ClusterView.Snapshot,
        round: ReplicaRound<ReadState, Result<Record?, ClusterError>>
    ) async {
        let timeout = Duration.milliseconds(Int64(settings.quorum.readTimeoutMillis))
        var failure: String?
        var reply: Record?
        if r == local {
            do throws(KVError) { reply = try await replica.get(key) } catch { failure = error.description }
        } else if let address = snapshot.address(of: r) {
            do {
                let bytes = try await endpoint.call(
                    address.transport, method: ClusterMethod.replicaRead.rawValue, payload: payload, timeout: timeout)
                reply = try ClusterCodec.decodeReadReply(bytes).record
            } catch {
                failure = String(describing: error)
            }
        } else {
            failure = "no address"
        }
        if failure == nil, let record = reply, !clock.isAcceptable(record.timestamp) {
            counters.withLock { $0.skewedReplies += 1 }
            failure = "clock skew: reply timestamp \(record.timestamp) is too far ahead"
        }
        let next: NodeID? = round.update { state in
            if let failure {
                state.tracker.recordFailure(from: r, reason: failure)
                return state.unsent.isEmpty ? nil : state.unsent.removeFirst()
            }
            state.tracker.recordReply(reply, from: r)
            return nil
        }
        if let next { ask(next, key: key, payload: payload, snapshot: snapshot, round: round) }
    }

    /// Sends `entry` to each of `replicas` (the local one in place) and waits for them, each bounded by the write timeout.
    private func repair(_ replicas: [NodeID], with entry: Entry, snapshot: ClusterView.Snapshot) async {
        let timeout = Duration.milliseconds(Int64(settings.quorum.writeTimeoutMillis))
        let payload = ClusterCodec.encode(ReplicaWrite(entries: [entry]))
        await withTaskGroup(of: Void.self) { group in
            for r in replicas {
                group.addTask {
                    if r == self.local {
                        try? await self.replica.apply([entry])
                    } else if let address = snapshot.address(of: r) {
                        _ = try? await self.endpoint.call(
                            address.transport, method: ClusterMethod.replicaWrite.rawValue, payload: payload,
                            timeout: timeout)
                    }
                }
            }
        }
    }
}
