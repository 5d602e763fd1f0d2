import Testing

@testable import KVCluster

@Suite struct HintPolicyTests {
    let policy = HintPolicy(settings: HintSettings(windowMillis: 10_000, maxHintsPerTarget: 3, deliveryBatchSize: 2))

    @Test func storesUntilTheQueueIsFullOrTheTargetIsDownTooLong() {
        #expect(policy.dropReason(queued: 0, targetDownSinceMillis: nil, nowMillis: 50_000) == nil)
        #expect(policy.dropReason(queued: 2, targetDownSinceMillis: 45_000, nowMillis: 50_000) == nil)
        #expect(policy.dropReason(queued: 3, targetDownSinceMillis: nil, nowMillis: 50_000) == .targetQueueFull(limit: 3))
        #expect(
            policy.dropReason(queued: 0, targetDownSinceMillis: 30_000, nowMillis: 50_000)
                == .targetDownTooLong(downForMillis: 20_000, windowMillis: 10_000))
        // Exactly at the window it is still hinted; a clock behind the down mark too.
        #expect(policy.dropReason(queued: 0, targetDownSinceMillis: 40_000, nowMillis: 50_000) == nil)
        #expect(policy.dropReason(queued: 0, targetDownSinceMillis: 60_000, nowMillis: 50_000) == nil)
        #expect(HintPolicy().settings.windowMillis == 10_800_000)
    }

    @Test func batchesSkipExpiredHintsAndKeepOrder() {
        // (id, created at): 1 and 3 are older than the 10 s window at t = 20 s.
        let queue: [(Int, UInt64)] = [(1, 5_000), (2, 12_000), (3, 9_000), (4, 15_000), (5, 19_000)]
        let (expired, deliver) = policy.nextBatch(from: queue, createdAt: { $0.1 }, nowMillis: 20_000)
        #expect(expired.map(\.0) == [1, 3])
        #expect(deliver.map(\.0) == [2, 4])  // batch size 2, in queue order
        let (none, all) = policy.nextBatch(from: queue.suffix(1), createdAt: { $0.1 }, nowMillis: 20_000)
        #expect(none.isEmpty && all.map(\.0) == [5])
        #expect(policy.isExpired(createdAtMillis: 0, nowMillis: 10_001))
        #expect(!policy.isExpired(createdAtMillis: 0, nowMillis: 10_000))
    }
}
