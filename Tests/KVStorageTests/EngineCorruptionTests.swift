import Foundation
import KVCore
import Testing
@testable import KVStorage

/// Damaged files seen through the whole engine: WAL damage in the tail is
/// truncated, elsewhere it refuses to open; SSTable damage is a typed error, the
/// table is quarantined, and no corrupt value is ever returned.
@Suite struct EngineCorruptionTests {
    static func value(_ i: Int) -> Value { Value("value-\(i)-" + String(repeating: "x", count: i % 40)) }

    func fill(_ dir: String, count: Int, settings: StorageSettings, flush: Bool) async throws {
        let engine = try await StorageEngine.open(
            directory: dir, settings: settings, clock: ManualClock(), logger: quietLogger)
        for i in 0..<count { try await engine.put(Key("k\(i)"), Self.value(i), at: ts(100 + UInt64(i))) }
        if flush { try await engine.flush() }
        await engine.close()
    }

    func walSegments(_ dir: String) -> [String] { fileNames(dir).filter { $0.hasPrefix("wal-") }.map { dir + "/" + $0 } }

    @Test func walDamageInTheMiddleRefusesToOpenAndATornTailIsTruncated() async throws {
        let dir = TemporaryDirectory("corrupt")
        defer { dir.remove() }
        var settings = smallStorageSettings()
        settings.wal.segmentBytes = 8 << 10
        try await fill(dir.path, count: 50, settings: settings, flush: false)
        let path = walSegments(dir.path)[0]
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let contents = try WALSegment.read(original, segment: 1, path: path)

        var damaged = original
        damaged[WALSegment.headerSize + 30] ^= 0x01  // inside the first frame
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        await #expect {
            _ = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        } throws: { error in
            guard case KVError.corruption(let p, _, _) = error else { return false }
            return p == path
        }

        // Cut the last frame in half: it was never acknowledged in sync mode; the rest opens.
        try Data(original[..<(contents.validEnd - 10)]).write(to: URL(fileURLWithPath: path))
        let engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        for i in 0..<49 { #expect(try await engine.value(for: Key("k\(i)")) == Self.value(i)) }
        #expect(try await engine.value(for: Key("k49")) == nil)
        await engine.close()
    }

    @Test func sstableBitFlipIsDetectedAndTheTableQuarantined() async throws {
        let dir = TemporaryDirectory("corrupt")
        defer { dir.remove() }
        var settings = smallStorageSettings()
        settings.tables.blockSizeBytes = 256
        settings.backgroundCompaction = false
        try await fill(dir.path, count: 200, settings: settings, flush: true)
        let tables = fileNames(dir.path).filter { $0.hasSuffix(".sst") }
        #expect(tables.count == 1)
        let tablePath = dir.path + "/" + tables[0]
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: tablePath)))
        bytes[40] ^= 0x20  // inside the first data block
        try Data(bytes).write(to: URL(fileURLWithPath: tablePath))

        let engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        var corruptionErrors = 0
        for i in 0..<200 {
            do {
                if let v = try await engine.value(for: Key("k\(i)")) { #expect(v == Self.value(i), "never a wrong value") }
            } catch {
                let path: String? = if case KVError.corruption(let p, _, _) = error { p } else { nil }
                #expect(path == tablePath)
                corruptionErrors += 1
            }
        }
        #expect(corruptionErrors == 1, "the first failed read quarantines the table; later reads skip it")
        #expect(await engine.stats().quarantinedTables == 1)
        #expect(await engine.stats().tableCount == 0)
        #expect(fileNames(dir.path + "/quarantine") == [tables[0]])
        await engine.close()
        // The quarantine is durable: the next open does not list the table.
        let reopened = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        #expect(await reopened.stats().tableCount == 0)
        await reopened.close()
    }

    @Test func sstableTruncationQuarantinesOnOpen() async throws {
        let dir = TemporaryDirectory("corrupt")
        defer { dir.remove() }
        var settings = smallStorageSettings()
        settings.backgroundCompaction = false
        try await fill(dir.path, count: 100, settings: settings, flush: true)
        let table = try #require(fileNames(dir.path).first { $0.hasSuffix(".sst") })
        let h = try #require(FileHandle(forUpdatingAtPath: dir.path + "/" + table))
        try h.truncate(atOffset: try h.seekToEnd() - 7)
        try h.close()
        let engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        #expect(await engine.stats().tableCount == 0)
        #expect(fileNames(dir.path + "/quarantine") == [table])
        #expect(try await engine.value(for: Key("k1")) == nil)
        await engine.close()
    }

    @Test func scanHitsCorruptionAsATypedError() async throws {
        let dir = TemporaryDirectory("corrupt")
        defer { dir.remove() }
        var settings = smallStorageSettings()
        settings.tables.blockSizeBytes = 256
        settings.backgroundCompaction = false
        try await fill(dir.path, count: 200, settings: settings, flush: true)
        let table = try #require(fileNames(dir.path).first { $0.hasSuffix(".sst") })
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + table)))
        bytes[100] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: dir.path + "/" + table))
        let engine = try await StorageEngine.open(directory: dir.path, settings: settings, logger: quietLogger)
        await #expect(throws: KVError.self) {
            _ = try await engine.scan(tokens: Token.min...Token.max, limit: 1000)
        }
        #expect(await engine.stats().quarantinedTables == 1)
        await engine.close()
    }
}
