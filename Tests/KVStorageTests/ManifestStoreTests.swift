import Foundation
import KVCore
import Testing
@testable import KVStorage

/// The manifest is written from the background thread and, now and then, from the
/// engine's executor: a state older than the one on disk must never replace it.
@Suite struct ManifestStoreTests {
    func state(tables: [UInt64]) -> Manifest {
        var m = Manifest()
        m.nextFileNumber = (tables.max() ?? 0) + 1
        m.tables = tables.map { Manifest.Table(number: $0, level: 0, sizeBytes: 100) }
        return m
    }

    @Test func aNewerStateReplacesTheFile() throws {
        let dir = TemporaryDirectory("manifest-store")
        defer { dir.remove() }
        let store = ManifestStore(directory: dir.path)
        try store.write(.init(version: 1, bytes: state(tables: [1]).encode()))
        try store.write(.init(version: 2, bytes: state(tables: [1, 2]).encode()))
        #expect(try Manifest.load(directory: dir.path) == state(tables: [1, 2]))
    }

    @Test func anOlderStateArrivingLateIsSkipped() throws {
        // Version 2 (derived from 1) reached the disk first; 1 must not roll it back.
        let dir = TemporaryDirectory("manifest-store")
        defer { dir.remove() }
        let store = ManifestStore(directory: dir.path)
        try store.write(.init(version: 2, bytes: state(tables: [1, 2]).encode()))
        try store.write(.init(version: 1, bytes: state(tables: [1]).encode()))
        #expect(try Manifest.load(directory: dir.path) == state(tables: [1, 2]))
        try store.write(.init(version: 3, bytes: state(tables: [3]).encode()))
        #expect(try Manifest.load(directory: dir.path) == state(tables: [3]))
    }

    @Test func flushesAndCompactionsLeaveTheManifestNamingEveryLiveTable() async throws {
        // The flusher and compactor write the manifest on their thread; after a few of
        // each, the file on disk must name exactly the tables the engine reads from.
        let dir = TemporaryDirectory("manifest-store")
        defer { dir.remove() }
        var settings = smallStorageSettings()
        settings.backgroundCompaction = true
        let engine = try await StorageEngine.open(
            directory: dir.path, settings: settings, clock: ManualClock(), logger: quietLogger)
        for round in 0..<6 {
            for i in 0..<200 { try await engine.put(Key("k\(i)"), Value("r\(round)-\(i)"), at: ts(UInt64(1000 * round + i + 1))) }
            try await engine.flush()
        }
        try await engine.compact()
        let live = await engine.tables.map(\.number).sorted()
        let onDisk = try #require(try Manifest.load(directory: dir.path)).tables.map(\.number).sorted()
        #expect(onDisk == live)
        await engine.close()
        let reopened = try await StorageEngine.open(
            directory: dir.path, settings: settings, clock: ManualClock(), logger: quietLogger)
        for i in 0..<200 { #expect(try await reopened.value(for: Key("k\(i)")) == Value("r5-\(i)")) }
        await reopened.close()
    }
}
