import Foundation
import KVCluster
import KVCore
import KVStorage
import Testing

struct HintStoreTests {
    func withEngine(_ body: (String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hints-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await body(dir)
    }

    func entry(_ i: Int) -> Entry { Entry(key: Key("k\(i)"), record: .value(Value("v\(i)"), at: Timestamp(rawValue: UInt64(i + 1)))) }

    @Test func hintsSurviveReopenInOrder() async throws {
        try await withEngine { dir in
            let policy = HintPolicy(settings: HintSettings(deliveryBatchSize: 4))
            var store = try await HintStore.open(engine: try await StorageEngine.open(directory: dir), policy: policy)
            for i in 0..<10 { try await store.store([entry(i)], for: NodeID("b"), downSinceMillis: nil, nowMillis: 1000) }
            try await store.store([entry(99)], for: NodeID("c"), downSinceMillis: nil, nowMillis: 1000)
            let first = try await store.nextBatch(for: NodeID("b"), nowMillis: 1001)
            #expect(first.map(\.entry) == (0..<4).map(entry))
            try await store.delivered(first)
            await store.close()

            store = try await HintStore.open(engine: try await StorageEngine.open(directory: dir), policy: policy)
            #expect(await store.queued == [NodeID("b"): 6, NodeID("c"): 1])
            let next = try await store.nextBatch(for: NodeID("b"), nowMillis: 1002)
            #expect(next.map(\.entry) == (4..<8).map(entry))
            // Sequence numbers keep growing past deleted hints: a new hint is visible.
            try await store.store([entry(50)], for: NodeID("b"), downSinceMillis: nil, nowMillis: 1003)
            #expect(await store.queued[NodeID("b")] == 7)
            await store.close()
        }
    }

    @Test func boundedPerTargetAndWindowed() async throws {
        try await withEngine { dir in
            let policy = HintPolicy(settings: HintSettings(windowMillis: 1000, maxHintsPerTarget: 3))
            let store = try await HintStore.open(engine: try await StorageEngine.open(directory: dir), policy: policy)
            let stored = try await store.store((0..<5).map(entry), for: NodeID("b"), downSinceMillis: nil, nowMillis: 0)
            #expect(stored == 3)
            #expect(await store.counters.droppedFull == 2)
            // Down longer than the window: not stored.
            #expect(try await store.store([entry(9)], for: NodeID("c"), downSinceMillis: 0, nowMillis: 5000) == 0)
            // Past the window, stored hints are dropped instead of delivered.
            #expect(try await store.nextBatch(for: NodeID("b"), nowMillis: 2000).isEmpty)
            #expect(await store.counters.droppedExpired == 4)
            #expect(await store.queued.isEmpty)
            await store.close()
        }
    }
}
