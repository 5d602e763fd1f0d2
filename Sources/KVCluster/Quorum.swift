import KVCore

/// How many replicas must answer a request. Chosen per request; the server's
/// `consistency=` parameter parses into it.
public enum ConsistencyLevel: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// One replica (reads prefer the local one). Also spelled `eventual`.
    case one
    /// A majority, ⌊N/2⌋ + 1. Also spelled `strong`.
    case quorum
    /// Every replica.
    case all

    /// Reads `one`/`eventual`, `quorum`/`strong`, `all` (any letter case); nil otherwise.
    public init?(parsing text: some StringProtocol) {
        switch text.lowercased() {
        case "one", "eventual": self = .one
        case "quorum", "strong": self = .quorum
        case "all": self = .all
        default: return nil
        }
    }

    /// Replies needed with `replicationFactor` replicas: 1, ⌊N/2⌋ + 1 or N.
    public func requiredReplies(replicationFactor n: Int) -> Int {
        switch self {
        case .one: min(1, n)
        case .quorum: n / 2 + 1
        case .all: n
        }
    }

    /// Acks a write needs when `pending` nodes are gaining its range (a node is leaving)
    /// besides its `replicas` natural replicas: W over the natural replicas plus one per
    /// pending replica, counting acks from either alike (Cassandra's rule). With `p`
    /// pending nodes gaining what `p` leaving nodes give up, any W + p acks include W
    /// among the natural replicas and W among the replicas after the move, so a
    /// quorum write stays visible to a quorum read of either ring. O(1).
    public func requiredWriteAcks(replicas n: Int, pending p: Int) -> Int {
        requiredReplies(replicationFactor: n) + p
    }

    public var description: String { rawValue }
}

/// Why a cluster request failed.
public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer replicas answered than the consistency level needs (HTTP 503).
    case quorumNotReached(needed: Int, answered: Int)
    /// Fewer replicas are up than needed, so the request was not even sent (HTTP 503).
    case unavailable(needed: Int, alive: Int)

    public var description: String {
        switch self {
        case let .quorumNotReached(needed, answered):
            "quorum not reached: \(answered) of \(needed) required replicas answered"
        case let .unavailable(needed, alive):
            "unavailable: \(needed) replicas required, \(alive) alive"
        }
    }
}

/// How one replica's part of a request ended.
public enum ReplicaOutcome<Reply: Sendable & Equatable>: Sendable, Equatable {
    case replied(Reply)
    /// The replica answered with an error (e.g. a disk error or a checksum failure).
    case failed(String)
    /// The replica did not answer in time.
    case timedOut
}

/// Bookkeeping for one coordinated write: which replicas acknowledged, which
/// failed, and whether the consistency level is met or can no longer be met.
///
/// The coordinator sends to all replicas, records each answer here, replies to the
/// client as soon as `result` is non-nil, and may keep recording the stragglers
/// (for hints) until `isComplete`. O(1) per record; no allocation after init.
public struct WriteTracker: Sendable {
    /// The replicas the write was sent to.
    public let replicas: [NodeID]
    /// Acks needed.
    public let required: Int
    /// How each replica ended, in `replicas` order; nil while it has not answered (first answer wins).
    /// An array rather than a dictionary: N is small, and a write records N outcomes.
    private var answers: [ReplicaOutcome<Bool>?]
    private var acks = 0
    private var failures = 0

    public init(replicas: [NodeID], consistency: ConsistencyLevel, replicationFactor: Int) {
        self.init(replicas: replicas, required: consistency.requiredReplies(replicationFactor: replicationFactor))
    }

    public init(replicas: [NodeID], required: Int) {
        self.replicas = replicas
        self.required = required
        answers = Array(repeating: nil, count: replicas.count)
    }

    /// Records `replica`'s acknowledgement. The first answer from a replica counts; later ones are ignored.
    public mutating func recordAck(from replica: NodeID) { note(.replied(true), from: replica) }
    /// Records `replica`'s error.
    public mutating func recordFailure(from replica: NodeID, reason: String) { note(.failed(reason), from: replica) }
    /// Records that `replica` did not answer in time.
    public mutating func recordTimeout(from replica: NodeID) { note(.timedOut, from: replica) }

    private mutating func note(_ outcome: ReplicaOutcome<Bool>, from replica: NodeID) {
        guard let i = replicas.firstIndex(of: replica), answers[i] == nil else { return }
        answers[i] = outcome
        if case .replied = outcome { acks += 1 } else { failures += 1 }
    }

    /// Replicas that have not answered yet.
    public var pending: [NodeID] { zip(replicas, answers).compactMap { $1 == nil ? $0 : nil } }
    /// How many replicas acknowledged.
    public var acknowledged: Int { acks }
    /// Replicas that failed or timed out: candidates for a hint.
    public var unsuccessful: [NodeID] {
        zip(replicas, answers).compactMap { replica, answer in
            if let answer, answer != .replied(true) { replica } else { nil }
        }
    }
    /// True once every replica answered (or timed out).
    public var isComplete: Bool { acks + failures == replicas.count }

    /// `nil` while undecided; `.success` once `required` acks arrived; a
    /// `quorumNotReached` failure as soon as too many replicas failed for it to be met.
    public var result: Result<Void, ClusterError>? {
        if acks >= required { return .success(()) }
        if replicas.count - failures < required { return .failure(.quorumNotReached(needed: required, answered: acks)) }
        return nil
    }

    /// Ends the wait: every replica still pending is recorded as timed out, and the
    /// result is then decided.
    public mutating func expire() -> Result<Void, ClusterError> {
        for r in pending { recordTimeout(from: r) }
        return result!
    }
}

/// Bookkeeping for one coordinated read: the replies, the newest record among them
/// (`Record.supersedes`, deterministic on ties), and the replicas that answered
/// with something older or nothing and need read repair.
///
/// A reply is the replica's record for the key, `nil` when it has none. O(1) per
/// record; `newest` and `repairs` are O(replicas).
public struct ReadTracker: Sendable {
    /// The replicas the read was sent to.
    public let replicas: [NodeID]
    /// Replies needed.
    public let required: Int
    /// How each replica that answered ended (first answer wins).
    public private(set) var outcomes: [NodeID: ReplicaOutcome<Record?>] = [:]
    private var replies = 0
    private var failures = 0

    public init(replicas: [NodeID], consistency: ConsistencyLevel, replicationFactor: Int) {
        self.init(replicas: replicas, required: consistency.requiredReplies(replicationFactor: replicationFactor))
    }

    public init(replicas: [NodeID], required: Int) {
        self.replicas = replicas
        self.required = required
    }

    /// Records `replica`'s reply (`nil`: it has no record for the key).
    public mutating func recordReply(_ record: Record?, from replica: NodeID) { note(.replied(record), from: replica) }
    /// Records `replica`'s error (e.g. a checksum failure: it is not repaired, another replica answers).
    public mutating func recordFailure(from replica: NodeID, reason: String) { note(.failed(reason), from: replica) }
    /// Records that `replica` did not answer in time.
    public mutating func recordTimeout(from replica: NodeID) { note(.timedOut, from: replica) }

    private mutating func note(_ outcome: ReplicaOutcome<Record?>, from replica: NodeID) {
        guard replicas.contains(replica), outcomes[replica] == nil else { return }
        outcomes[replica] = outcome
        if case .replied = outcome { replies += 1 } else { failures += 1 }
    }

    /// Replicas that have not answered yet.
    public var pending: [NodeID] { replicas.filter { outcomes[$0] == nil } }
    /// How many replicas replied.
    public var answered: Int { replies }
    /// True once every replica answered (or timed out).
    public var isComplete: Bool { replies + failures == replicas.count }

    /// The newest record among the replies so far (`nil` if none had one).
    public var newest: Record? {
        var best: Record?
        for r in replicas {
            guard case let .replied(record?) = outcomes[r] else { continue }
            best = best.map { Record.newest($0, record) } ?? record
        }
        return best
    }

    /// `nil` while undecided; the newest record (or `nil` = not found) once `required`
    /// replicas replied; `quorumNotReached` once too many failed.
    public var result: Result<Record?, ClusterError>? {
        if replies >= required { return .success(newest) }
        if replicas.count - failures < required {
            return .failure(.quorumNotReached(needed: required, answered: replies))
        }
        return nil
    }

    /// Replicas that replied with something other than the newest record (older,
    /// a losing tie, or nothing), each to be sent the newest. Empty when the replies
    /// agree or none had a record.
    public var repairs: [NodeID] {
        guard let newest else { return [] }
        return replicas.filter { r in
            guard case let .replied(record) = outcomes[r] else { return false }
            return record != newest
        }
    }

    /// Ends the wait: pending replicas are recorded as timed out; returns the result.
    public mutating func expire() -> Result<Record?, ClusterError> {
        for r in pending { recordTimeout(from: r) }
        return result!
    }
}
