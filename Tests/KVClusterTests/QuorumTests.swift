import KVCore
import Testing

@testable import KVCluster

@Suite struct QuorumTests {
    let a = NodeID("a"), b = NodeID("b"), c = NodeID("c")
    var replicas: [NodeID] { [a, b, c] }

    static func record(_ value: String, at ms: UInt64) -> Record {
        .value(Value(value), at: Timestamp(physicalMillis: ms, logical: 0))
    }

    @Test func parsingAndRequiredReplies() {
        #expect(ConsistencyLevel(parsing: "eventual") == .one)
        #expect(ConsistencyLevel(parsing: "STRONG") == .quorum)
        #expect(ConsistencyLevel(parsing: "one") == .one)
        #expect(ConsistencyLevel(parsing: "Quorum") == .quorum)
        #expect(ConsistencyLevel(parsing: "all") == .all)
        #expect(ConsistencyLevel(parsing: "two") == nil)
        #expect(ConsistencyLevel(parsing: "") == nil)
        #expect([ConsistencyLevel.one, .quorum, .all].map { $0.requiredReplies(replicationFactor: 3) } == [1, 2, 3])
        #expect([ConsistencyLevel.one, .quorum, .all].map { $0.requiredReplies(replicationFactor: 5) } == [1, 3, 5])
        #expect([ConsistencyLevel.one, .quorum, .all].map { $0.requiredReplies(replicationFactor: 1) } == [1, 1, 1])
        #expect(ConsistencyLevel.quorum.requiredReplies(replicationFactor: 4) == 3)
        let defaults = QuorumSettings()
        #expect(defaults.writeConsistency.requiredReplies(replicationFactor: RingSettings().replicationFactor) == 2)
        #expect(defaults.readConsistency.requiredReplies(replicationFactor: RingSettings().replicationFactor) == 2)
    }

    @Test func writeAtOneSucceedsOnFirstAck() {
        var w = WriteTracker(replicas: replicas, consistency: .one, replicationFactor: 3)
        #expect(w.result == nil)
        w.recordFailure(from: a, reason: "disk full")
        #expect(w.result == nil)
        w.recordAck(from: b)
        #expect(w.result.map { (try? $0.get()) != nil } == true)
        #expect(!w.isComplete)
        #expect(w.pending == [c])
        w.recordTimeout(from: c)
        #expect(w.isComplete)
        #expect(w.unsuccessful == [a, c])
    }

    @Test func writeAtQuorum() {
        var w = WriteTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        w.recordAck(from: a)
        w.recordAck(from: a)  // a duplicate does not count twice
        w.recordAck(from: NodeID("stranger"))  // nor does a node the write was not sent to
        #expect(w.acknowledged == 1)
        #expect(w.result == nil)
        w.recordFailure(from: b, reason: "io")
        #expect(w.result == nil)  // c may still answer
        w.recordAck(from: c)
        #expect((try? w.result?.get()) != nil)

        var failing = WriteTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        failing.recordAck(from: a)
        failing.recordTimeout(from: b)
        failing.recordFailure(from: c, reason: "io")
        #expect(failing.result.map(Self.error) == .quorumNotReached(needed: 2, answered: 1))
    }

    @Test func writeAtAllFailsWithOneReplicaDown() {
        var w = WriteTracker(replicas: replicas, consistency: .all, replicationFactor: 3)
        w.recordAck(from: a)
        w.recordTimeout(from: b)
        // Decided as soon as all can no longer be reached, without waiting for c.
        #expect(w.result.map(Self.error) == .quorumNotReached(needed: 3, answered: 1))
        var expiring = WriteTracker(replicas: replicas, consistency: .all, replicationFactor: 3)
        expiring.recordAck(from: a)
        expiring.recordAck(from: b)
        #expect(Self.error(expiring.expire()) == .quorumNotReached(needed: 3, answered: 2))
        #expect(expiring.unsuccessful == [c])
    }

    static func error<T>(_ r: Result<T, ClusterError>) -> ClusterError? {
        if case let .failure(e) = r { return e }
        return nil
    }

    static func value(_ r: Result<Record?, ClusterError>?) -> Record?? {
        guard let r, case let .success(v) = r else { return nil }
        return .some(v)
    }

    @Test func quorumReadPicksNewestAndListsStaleReplicas() {
        var r = ReadTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        let old = Self.record("old", at: 100)
        let new = Self.record("new", at: 200)
        r.recordReply(old, from: a)
        #expect(r.result == nil)
        r.recordReply(new, from: b)
        #expect(Self.value(r.result) == .some(new))
        #expect(r.repairs == [a])
        // c answers late with nothing: it needs the newest too.
        r.recordReply(nil, from: c)
        #expect(r.isComplete)
        #expect(r.repairs == [a, c])
    }

    @Test func tiesBreakDeterministically() {
        let ts = Timestamp(physicalMillis: 500, logical: 3)
        let value = Record.value(Value("v"), at: ts)
        let tombstone = Record.tombstone(at: ts)
        for order in [[a, b], [b, a]] {
            var r = ReadTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
            r.recordReply(order[0] == a ? value : tombstone, from: order[0])
            r.recordReply(order[1] == a ? value : tombstone, from: order[1])
            // Same timestamp: the tombstone wins whichever replied first; a (the value) is repaired.
            #expect(Self.value(r.result) == .some(tombstone))
            #expect(r.repairs == [a])
        }
        // Two values with one timestamp: the bytewise larger wins.
        var r = ReadTracker(replicas: replicas, consistency: .all, replicationFactor: 3)
        r.recordReply(.value(Value("x"), at: ts), from: a)
        r.recordReply(.value(Value("y"), at: ts), from: b)
        r.recordReply(.value(Value("y"), at: ts), from: c)
        #expect(Self.value(r.result) == .some(.value(Value("y"), at: ts)))
        #expect(r.repairs == [a])
    }

    @Test func agreeingAndMissingReads() {
        let rec = Self.record("same", at: 1)
        var agree = ReadTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        agree.recordReply(rec, from: a)
        agree.recordReply(rec, from: c)
        #expect(Self.value(agree.result) == .some(rec))
        #expect(agree.repairs.isEmpty)

        var missing = ReadTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        missing.recordReply(nil, from: a)
        missing.recordReply(nil, from: b)
        #expect(Self.value(missing.result) == .some(nil))
        #expect(missing.repairs.isEmpty)
    }

    @Test func readFailures() {
        var one = ReadTracker(replicas: replicas, consistency: .one, replicationFactor: 3)
        one.recordFailure(from: a, reason: "checksum mismatch")
        one.recordTimeout(from: b)
        #expect(one.result == nil)
        one.recordReply(nil, from: c)
        #expect(Self.value(one.result) == .some(nil))

        var quorum = ReadTracker(replicas: replicas, consistency: .quorum, replicationFactor: 3)
        quorum.recordReply(Self.record("x", at: 1), from: a)
        #expect(Self.error(quorum.expire()) == .quorumNotReached(needed: 2, answered: 1))
        // Failures are not repaired (they did not say what they hold).
        #expect(quorum.repairs.isEmpty)

        var all = ReadTracker(replicas: replicas, consistency: .all, replicationFactor: 3)
        all.recordReply(nil, from: a)
        all.recordFailure(from: c, reason: "io")
        #expect(all.result.map(Self.error) == .quorumNotReached(needed: 3, answered: 1))
        #expect(ClusterError.quorumNotReached(needed: 3, answered: 1).description.contains("1 of 3"))
    }
}

@Suite struct ClusterSettingsTests {
    @Test func defaultsAreTheDocumentedOnes() {
        let s = ClusterSettings()
        #expect(s.ring.numTokens == 256 && s.ring.replicationFactor == 3)
        #expect(s.gossip.intervalMillis == 1000)
        #expect(s.failureDetector.phiThreshold == 8 && s.failureDetector.maxSampleSize == 1000)
        #expect(s.quorum.writeConsistency == .quorum && s.quorum.readConsistency == .quorum)
        #expect(s.hints.windowMillis == 3 * 3600 * 1000)
        #expect(s.antiEntropy.merkleDepth == 15)
    }
}
