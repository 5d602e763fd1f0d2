import KVCore

/// What the gossip protocol asks its shell to do, or tells it happened.
public enum GossipDirective: Hashable, Sendable {
    /// Send `message` to the node listening at `to`.
    case send(GossipMessage, to: NodeAddress)
    /// A node was heard of for the first time (the ring may need rebuilding).
    case discovered(EndpointState)
    /// A node changed its status, address, rack or tokens (the ring may need rebuilding).
    case stateChanged(from: EndpointState, to: EndpointState)
    /// A node came back with a new generation: it restarted.
    case restarted(EndpointState)
    /// The local failure detector now considers the node up.
    case up(NodeID)
    /// The local failure detector now considers the node down (phi over the threshold).
    case down(NodeID)
    /// A node that left was dropped from the table after the retention period.
    case forgotten(NodeID)
    /// A message came from a node of another cluster (its name differs): it was dropped.
    /// Reported once per sending node; every such message is counted in
    /// `GossipInstance.foreignMessages`.
    case foreignCluster(from: NodeID, address: NodeAddress, clusterName: String)
}

/// The gossip protocol as a value: ticks and messages go in, directives come out.
/// It does no I/O and owns no clock or random source (both are passed in), so a test
/// can run thousands of rounds of a whole simulated cluster in milliseconds; the
/// `Gossiper` actor is the shell that sends the messages and calls `tick` every
/// `GossipSettings.intervalMillis`.
///
/// Each round (`tick`) the node bumps its own heartbeat version, checks its failure
/// detectors, and starts a syn/ack/ack2 exchange (see `GossipMessage`) with a random
/// live peer; with some probability also with a random down peer (so recovery is
/// noticed) and a random seed (so partitions heal and joiners are found), following
/// Cassandra's rules. A peer's failure detector is fed whenever its heartbeat version
/// is seen to advance, directly or through a third node. A node first heard of is
/// marked up only when its heartbeat is seen to advance after that (stale news of a
/// dead node does not revive it).
///
/// Every message carries the cluster name; a message from another cluster is dropped
/// before anything in it is looked at (its sender never enters the membership), counted,
/// and reported once per sender (`GossipDirective.foreignCluster`).
///
/// The instance also tracks which version of this node's own state each peer was last
/// seen to hold (from the digests in the peer's `syn`s and the requests in its `ack`s; an
/// `ack` always carries a request for the initiator's own state, even when it is current),
/// so a node changing its status can tell when every live peer has heard of it
/// (`peersBehind(localVersion:)`; decommission waits for this).
///
/// Costs: a round is O(members log members) to build the sorted digest list; handling
/// a message is O(members) plus the updates it carries. A digest is ~15 bytes; a whole
/// state ~30 bytes + 8 per token (~2 KiB at 256 tokens) and is sent only when the peer
/// lacks the node's current status or tokens, otherwise a heartbeat-only update (~15
/// bytes) is. So a steady-state exchange in an n-node cluster is ~45·n bytes.
public struct GossipInstance: Sendable {
    /// The cluster this node belongs to; gossip from any other is dropped.
    public let clusterName: String
    /// Round interval and retention of departed nodes.
    public let settings: GossipSettings
    /// Parameters of the per-peer phi-accrual detectors.
    public let detectorSettings: FailureDetectorSettings
    /// This node's id.
    public let localID: NodeID
    /// Seed addresses to contact (this node's own address is ignored if listed).
    public let seeds: [NodeAddress]
    /// Every known state, this node's own included.
    public private(set) var membership: Membership
    /// Peers the local failure detector considers up (never includes this node).
    public private(set) var liveNodes: Set<NodeID> = []
    private var detectors: [NodeID: PhiAccrualFailureDetector] = [:]
    /// When each `left` node was first seen as left, for forgetting it later.
    private var leftSinceMillis: [NodeID: UInt64] = [:]
    /// The newest version of this node's current generation each peer was seen to hold.
    private var peerKnowledge: [NodeID: UInt64] = [:]
    /// Nodes of other clusters already reported (each once).
    private var foreignSenders: Set<NodeID> = []
    /// Messages dropped because they came from another cluster.
    public private(set) var foreignMessages: UInt64 = 0

    /// Starts gossiping as `local` (its `generation` must be at least 1 and exceed any
    /// earlier run's; see `nextGeneration`).
    public init(
        local: EndpointState, seeds: [NodeAddress], clusterName: String = ClusterSettings.defaultName,
        settings: GossipSettings = .init(), detectorSettings: FailureDetectorSettings = .init()
    ) {
        precondition(local.generation >= 1, "generation 0 is reserved for 'unknown' in gossip requests")
        self.clusterName = clusterName
        self.localID = local.id
        self.seeds = seeds.filter { $0 != local.address }
        self.settings = settings
        self.detectorSettings = detectorSettings
        self.membership = Membership([local])
    }

    /// A generation for a node starting at `nowMillis`: seconds since the epoch, but
    /// always above the previous run's (`previous`, read from disk by the shell).
    public static func nextGeneration(previous: UInt64?, nowMillis: UInt64) -> UInt64 {
        max((previous ?? 0) + 1, nowMillis / 1000)
    }

    /// This node's own current state.
    public var localState: EndpointState { membership[localID]! }

    /// Whether the local detector considers `id` up (this node is always up to itself).
    public func isUp(_ id: NodeID) -> Bool { id == localID || liveNodes.contains(id) }

    /// Known peers that are not up and have not left, sorted by id.
    public var downNodes: [NodeID] {
        membership.states.compactMap { id, state in
            id != localID && state.status != .left && !liveNodes.contains(id) ? id : nil
        }.sorted()
    }

    /// The phi of a peer at `nowMillis` (0 for an unknown peer or this node).
    public func phi(of id: NodeID, nowMillis: UInt64) -> Double {
        detectors[id]?.phi(nowMillis: nowMillis) ?? 0
    }

    /// Changes this node's own status (and tokens, when given), bumping its version
    /// so the change spreads in the next rounds. Returns the new version (a peer holding
    /// it or later has heard of the change; see `peersBehind(localVersion:)`).
    @discardableResult
    public mutating func updateLocal(status: NodeStatus, tokens: [Token]? = nil) -> UInt64 {
        var s = localState
        s.status = status
        if let tokens { s.tokens = tokens }
        s.version += 1
        s.stateVersion = s.version
        membership.set(s)
        return s.version
    }

    /// The live peers (up, not left) not yet seen holding `localVersion` or later of this
    /// node's state, sorted by id. Empty once every live peer has heard of a change made
    /// at that version. O(members).
    public func peersBehind(localVersion: UInt64) -> [NodeID] {
        liveNodes.filter { id in
            membership[id]?.status != .left && (peerKnowledge[id] ?? 0) < localVersion
        }.sorted()
    }

    /// Records that `peer` holds version `version` of this node's state (from a digest it sent).
    private mutating func notePeer(_ peer: NodeID, holds digest: GossipDigest) {
        guard digest.id == localID, digest.generation == localState.generation, peer != localID else { return }
        peerKnowledge[peer] = max(peerKnowledge[peer] ?? 0, digest.version)
    }

    /// One gossip round at `nowMillis`: heartbeat, failure checks, then exchanges.
    public mutating func tick(nowMillis: UInt64, using rng: inout some RandomNumberGenerator) -> [GossipDirective] {
        var out: [GossipDirective] = []
        var me = localState
        me.version += 1
        membership.set(me)

        for id in liveNodes.sorted() where !(detectors[id]?.isAvailable(nowMillis: nowMillis) ?? false) {
            liveNodes.remove(id)
            out.append(.down(id))
        }
        for (id, since) in leftSinceMillis.sorted(by: { $0.key < $1.key })
        where nowMillis >= since && nowMillis - since >= settings.leftRetentionMillis {
            leftSinceMillis[id] = nil
            detectors[id] = nil
            peerKnowledge[id] = nil
            liveNodes.remove(id)
            membership.remove(id)
            out.append(.forgotten(id))
        }

        let syn = GossipMessage(
            clusterName: clusterName, from: localID, fromAddress: me.address, body: .syn(digests: membership.digests))
        var targets: [NodeAddress] = []
        let live = liveNodes.sorted().compactMap { membership[$0]?.address }
        let down = downNodes.compactMap { membership[$0]?.address }
        if let peer = live.randomElement(using: &rng) { targets.append(peer) }
        if !down.isEmpty, Double.random(in: 0..<1, using: &rng) < Double(down.count) / Double(live.count + 1) {
            targets.append(down.randomElement(using: &rng)!)
        }
        let gossipedToSeed = targets.contains { seeds.contains($0) }
        if !seeds.isEmpty, !gossipedToSeed || live.count < seeds.count {
            if live.isEmpty || Double.random(in: 0..<1, using: &rng) < Double(seeds.count) / Double(live.count + down.count) {
                targets.append(seeds.randomElement(using: &rng)!)
            }
        }
        var sent: Set<NodeAddress> = []
        for t in targets where sent.insert(t).inserted { out.append(.send(syn, to: t)) }
        return out
    }

    /// Handles one gossip message received at `nowMillis`; returns the reply (if any)
    /// and what changed.
    public mutating func receive(_ message: GossipMessage, nowMillis: UInt64) -> [GossipDirective] {
        guard message.clusterName == clusterName else {
            foreignMessages += 1
            guard foreignSenders.insert(message.from).inserted else { return [] }
            return [.foreignCluster(from: message.from, address: message.fromAddress, clusterName: message.clusterName)]
        }
        var out: [GossipDirective] = []
        let me = localState
        switch message.body {
        case let .syn(digests):
            for d in digests { notePeer(message.from, holds: d) }
            var updates: [GossipUpdate] = []
            var requests: [GossipDigest] = []
            var mentioned: Set<NodeID> = []
            for remote in digests {
                mentioned.insert(remote.id)
                // A request names the version we already hold (0/0 for none): "send me newer".
                guard let local = membership[remote.id] else {
                    requests.append(GossipDigest(id: remote.id, generation: 0, version: 0))
                    continue
                }
                if remote.isNewer(than: local.digest) {
                    requests.append(local.digest)
                } else if local.digest.isNewer(than: remote) {
                    updates.append(.bringing(remote, to: local))
                } else if remote.id == message.from {
                    // Up to date on the initiator itself: say so (a request it answers with
                    // nothing), so it learns which of its versions this node holds.
                    requests.append(local.digest)
                }
            }
            // States the initiator did not mention at all (usually none), in id order.
            updates += membership.states.values.filter { !mentioned.contains($0.id) }.sorted { $0.id < $1.id }
                .map { .state($0) }
            let ack = GossipMessage(
                clusterName: clusterName, from: localID, fromAddress: me.address,
                body: .ack(updates: updates, requests: requests))
            out.append(.send(ack, to: message.fromAddress))
        case let .ack(updates, requests):
            for d in requests { notePeer(message.from, holds: d) }
            apply(updates, nowMillis: nowMillis, into: &out)
            let reply = requests.compactMap { request -> GossipUpdate? in
                guard let local = membership[request.id], local.digest.isNewer(than: request) else { return nil }
                return .bringing(request.generation == 0 ? nil : request, to: local)
            }
            if !reply.isEmpty {
                let ack2 = GossipMessage(
                    clusterName: clusterName, from: localID, fromAddress: me.address, body: .ack2(updates: reply))
                out.append(.send(ack2, to: message.fromAddress))
            }
        case let .ack2(updates):
            apply(updates, nowMillis: nowMillis, into: &out)
        }
        return out
    }

    /// Merges remote updates, feeding detectors and reporting changes. A heartbeat-only
    /// update applies to the state held for the same generation; otherwise it is ignored
    /// (the next exchange sends the whole state).
    private mutating func apply(_ updates: [GossipUpdate], nowMillis: UInt64, into out: inout [GossipDirective]) {
        for update in updates where update.id != localID {
            let state: EndpointState
            switch update {
            case let .state(s):
                state = s
            case let .heartbeat(d):
                guard var held = membership[d.id], held.generation == d.generation, d.version > held.version else {
                    continue
                }
                held.version = d.version
                state = held
            }
            apply(state, nowMillis: nowMillis, into: &out)
        }
    }

    /// Merges one remote state, feeding the detector and reporting changes.
    private mutating func apply(_ state: EndpointState, nowMillis: UInt64, into out: inout [GossipDirective]) {
        let (changed, previous) = membership.merge(state)
        guard changed else { return }
        guard let previous else {
            var detector = PhiAccrualFailureDetector(settings: detectorSettings)
            detector.heartbeat(nowMillis: nowMillis)
            detectors[state.id] = detector
            out.append(.discovered(state))
            noteLeft(state, nowMillis: nowMillis, into: &out)
            return
        }
        if state.generation > previous.generation {
            // A new incarnation: its old rhythm (and what it knew of this node) says nothing about the new one.
            peerKnowledge[state.id] = nil
            var detector = PhiAccrualFailureDetector(settings: detectorSettings)
            detector.heartbeat(nowMillis: nowMillis)
            detectors[state.id] = detector
            out.append(.restarted(state))
        } else {
            detectors[state.id, default: PhiAccrualFailureDetector(settings: detectorSettings)]
                .heartbeat(nowMillis: nowMillis)
            if state.status != .left, liveNodes.insert(state.id).inserted {
                out.append(.up(state.id))
            }
        }
        if previous.status != state.status || previous.address != state.address || previous.rack != state.rack
            || previous.tokens != state.tokens
        {
            out.append(.stateChanged(from: previous, to: state))
        }
        noteLeft(state, nowMillis: nowMillis, into: &out)
    }

    private mutating func noteLeft(_ state: EndpointState, nowMillis: UInt64, into out: inout [GossipDirective]) {
        guard state.status == .left else { return }
        if leftSinceMillis[state.id] == nil { leftSinceMillis[state.id] = nowMillis }
        if liveNodes.remove(state.id) != nil { out.append(.down(state.id)) }
    }
}
