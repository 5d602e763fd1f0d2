import KVCore
import KVStorage
import KVTransport
import Logging

/// Decommission: the node leaves the ring with its data handed over (`nodetool decommission`).
///
/// 1. Refusals first (`DecommissionPlan`): the node must be `normal`, no other node
///    leaving, at least N nodes must remain, and every node gaining a range must be up.
/// 2. `leaving` is gossiped; the node keeps serving. Every coordinator that sees it also
///    sends writes for the ranges it gives up to the pending replicas. The node waits
///    until every live peer has gossiped back its `leaving` state (at most
///    `announceTimeoutMillis`), then one write timeout more, so writes coordinated from
///    an older view have landed here before the scan. If another node turned out to be
///    leaving too (both asked before hearing of each other), the one with the larger id
///    goes back to `normal` (`anotherNodeLeaving`); so does a node that finds the other
///    has already left by then.
/// 3. Streaming: each range it gives up is scanned and sent to the node gaining it
///    (`RangeStreamer`: original timestamps, tombstones and expiries). A range that
///    cannot be sent fails the decommission and the node is `normal` again.
/// 4. `DECOMMISSIONED` is written to the data directory (`DecommissionFile`): the node
///    will refuse to start on it again.
/// 5. `left` is gossiped: client requests are refused from now on (`hasLeft`); peers drop
///    the node from their rings and keep its `left` state (for
///    `GossipSettings.leftRetentionMillis`) so stale gossip cannot bring it back. The node
///    waits until every live peer has heard.
/// 6. Hints it holds are delivered to their targets that are up; those for targets that
///    are down are handed to a remaining node (the up ring member with the smallest id),
///    which keeps them as its own hints (their hint window restarts there).
/// 7. `run()` returns and the node closes.
extension Node {
    /// Decommissions this node and waits until it has left the cluster (or the attempt
    /// failed). Requires `run()` to be running: the work happens there. Throws a refusal
    /// at once, before anything changes; throws `streamFailed`/`interrupted` when it
    /// failed later (the node is then `normal` again and may retry). Cost: one scan of
    /// every range the node gives up (about N/nodes of its data) sent over RPC.
    public func decommission() async throws(DecommissionError) -> DecommissionProgress {
        _ = try beginDecommission()
        let outcome = await waitForDecommission() ?? DecommissionProgress(phase: .failed, rangesTotal: 0, startedAtMillis: 0)
        if outcome.phase == .failed { throw outcome.error ?? .interrupted }
        return outcome
    }

    /// Checks the refusals and starts a decommission without waiting for it (the HTTP
    /// endpoint's 202); follow it with `decommissionProgress` or `waitForDecommission()`.
    @discardableResult
    public func beginDecommission() throws(DecommissionError) -> DecommissionProgress {
        let snapshot = view.snapshot
        if hasLeft { throw .notNormal(.left) }
        if let status = snapshot.states[id]?.status, status != .normal { throw .notNormal(status) }
        if let current = decommissionState, !current.phase.isFinished { throw .alreadyInProgress }
        let plan = try DecommissionPlan(leaving: id, view: snapshot)
        let progress = DecommissionProgress(
            phase: .announcingLeaving, rangesTotal: plan.streams.count, startedAtMillis: coordinator.clock.nowMillis())
        decommissionState = progress
        decommissionRequests.continuation.yield()
        logger.notice("\(id): decommission started (\(plan.streams.count) ranges to stream)")
        return progress
    }

    /// The decommission asked for on this node, if any: its phase and counts.
    public var decommissionProgress: DecommissionProgress? { decommissionState }

    /// Waits until the decommission asked for has finished (`left` or `failed`) and returns
    /// its final progress; nil when none was asked for.
    public func waitForDecommission() async -> DecommissionProgress? {
        guard let current = decommissionState else { return nil }
        if current.phase.isFinished { return current }
        return await withCheckedContinuation { decommissionWaiters.append($0) }
    }

    /// The whole flow (see the extension's documentation); runs inside `run()`.
    func performDecommission() async {
        guard decommissionState?.phase == .announcingLeaving else { return }
        let cluster = settings.cluster
        let writeTimeout = Duration.milliseconds(Int64(cluster.quorum.writeTimeoutMillis))
        let gossipInterval = Duration.milliseconds(Int64(cluster.gossip.intervalMillis))
        do throws(DecommissionError) {
            let leftBefore = Set(view.snapshot.states.values.filter { $0.status == .left }.map(\.id))
            let leavingVersion = await gossiper.announce(.leaving)
            logger.notice("\(id) is leaving")
            try await waitUntilPeersHeard(version: leavingVersion, what: "leaving")
            // Two nodes asked to leave at once (before either heard of the other): the one
            // with the larger id gives way, so one range movement runs at a time; so does
            // one that finds the other has already left while it waited.
            if let other = DecommissionPlan.nodeToGiveWayTo(
                leaving: id, states: view.snapshot.states, leftBefore: leftBefore)
            {
                throw .anotherNodeLeaving(other)
            }
            // Writes coordinated from an older view (sent here but not to the pending
            // replicas) have landed or timed out after this.
            try await pause(writeTimeout)

            decommissionState?.phase = .streaming
            let snapshot = view.snapshot
            let streams = StreamPlan(from: snapshot.ring, to: snapshot.ring.removing(id)) { [id] in $0 == id }.streams
            decommissionState?.rangesTotal = streams.count
            let streamer = RangeStreamer(
                replica: replica, endpoint: endpoint, settings: cluster.decommission, timeout: writeTimeout,
                retryDelay: gossipInterval)
            for stream in streams {
                guard let address = view.snapshot.address(of: stream.destination) else {
                    throw .streamFailed(range: stream.range, destination: stream.destination, reason: "address unknown")
                }
                try await streamer.stream(stream.range, to: stream.destination, at: address) { records, bytes in
                    self.noteStreamed(records: records, bytes: bytes)
                }
                decommissionState?.rangesStreamed += 1
            }
            logger.notice("\(id) streamed \(streams.count) ranges (\(decommissionState?.recordsStreamed ?? 0) records)")

            do throws(KVError) {
                try DecommissionFile.write(
                    node: id, generation: await gossiper.localState.generation,
                    nowMillis: coordinator.clock.nowMillis(), dataDirectory: settings.dataDirectory)
            } catch {
                throw .recordNotWritten(error)
            }
        } catch {
            logger.warning("\(id): decommission failed: \(error); back to normal")
            await gossiper.announce(.normal)
            decommissionState?.error = error
            finishDecommission(.failed)
            return
        }

        markLeft()
        decommissionState?.phase = .announcingLeft
        let leftVersion = await gossiper.announce(.left)
        logger.notice("\(id) has left the ring")
        // Nothing can be undone from here: an interruption only shortens the waits.
        try? await waitUntilPeersHeard(version: leftVersion, what: "left")
        decommissionState?.phase = .handingOffHints
        await handOffHints()
        finishDecommission(.left)
    }

    private func noteStreamed(records: Int, bytes: Int) {
        decommissionState?.recordsStreamed += UInt64(records)
        decommissionState?.bytesStreamed += UInt64(bytes)
    }

    private func finishDecommission(_ phase: DecommissionPhase) {
        decommissionState?.phase = phase
        decommissionState?.finishedAtMillis = coordinator.clock.nowMillis()
        guard let final = decommissionState else { return }
        let waiters = decommissionWaiters
        decommissionWaiters = []
        for waiter in waiters { waiter.resume(returning: final) }
    }

    /// Polls gossip (every half interval) until every live peer holds `version` of this
    /// node's state, or `announceTimeoutMillis` passed (then logs who had not heard).
    private func waitUntilPeersHeard(version: UInt64, what: String) async throws(DecommissionError) {
        let interval = settings.cluster.gossip.intervalMillis
        let poll = Duration.milliseconds(Int64(max(5, interval / 2)))
        let deadline = ContinuousClock.now + .milliseconds(Int64(settings.cluster.decommission.announceTimeoutMillis))
        while true {
            let behind = await gossiper.peersBehind(localVersion: version)
            if behind.isEmpty { return }
            if ContinuousClock.now >= deadline {
                logger.warning("\(id): \(behind.map(\.name)) have not heard that it is \(what); going on")
                return
            }
            try await pause(poll)
        }
    }

    private func pause(_ duration: Duration) async throws(DecommissionError) {
        do { try await Task.sleep(for: duration) } catch { throw .interrupted }
    }

    /// Delivers the hints for targets that are up, and hands the others to a remaining node.
    private func handOffHints() async {
        decommissionState?.hintsDelivered = await hintWorker.deliverOnce()
        let snapshot = view.snapshot
        let timeout = Duration.milliseconds(Int64(settings.cluster.quorum.writeTimeoutMillis))
        for target in await hints.queued.keys.sorted() where target != id {
            let candidates = snapshot.ring.members.map(\.id).filter { $0 != id && $0 != target && snapshot.isUp($0) }
            guard let receiver = candidates.min(), let address = snapshot.address(of: receiver) else {
                logger.warning("\(id): no remaining node is up to take the hints for \(target); repair must fill the gap")
                continue
            }
            while !Task.isCancelled {
                let batch: [Hint]
                do throws(KVError) {
                    batch = try await hints.nextBatch(for: target, nowMillis: coordinator.clock.nowMillis())
                } catch {
                    logger.warning("\(id): hint log: \(error)")
                    break
                }
                if batch.isEmpty { break }
                let payload = ClusterCodec.encode(ReplicaWrite(entries: batch.map(\.entry), hintFor: target))
                do {
                    _ = try await endpoint.call(
                        address.transport, method: ClusterMethod.replicaWrite.rawValue, payload: payload, timeout: timeout)
                    try await hints.handedOff(batch)
                    decommissionState?.hintsHandedOff += batch.count
                } catch {
                    logger.warning("\(id): handing hints for \(target) to \(receiver) failed: \(error)")
                    break
                }
            }
        }
    }
}
