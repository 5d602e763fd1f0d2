import Foundation
import KVCore
import Testing
@testable import KVStorage

/// The state a crash leaves between the steps of a flush or a compaction,
/// recreated file by file, must reopen to the same data with the leftovers gone.
@Suite struct EngineCrashPointTests {
    var settings: StorageSettings {
        var s = smallStorageSettings()
        s.backgroundCompaction = false
        s.wal.segmentBytes = 8 << 10
        return s
    }

    func open(_ dir: String) async throws -> StorageEngine {
        try await StorageEngine.open(directory: dir, settings: settings, clock: ManualClock(), logger: quietLogger)
    }

    func write(_ engine: StorageEngine, _ range: Range<Int>, tag: String) async throws {
        for i in range { try await engine.put(Key("k\(i)"), Value("\(tag)-\(i)"), at: ts(1000 + UInt64(i))) }
    }

    func expectValues(_ engine: StorageEngine, _ range: Range<Int>, tag: String) async throws {
        for i in range { #expect(try await engine.value(for: Key("k\(i)")) == Value("\(tag)-\(i)")) }
    }

    func copy(_ files: [String], from: String, to: String) throws {
        for f in files { try FileManager.default.copyItem(atPath: from + "/" + f, toPath: to + "/" + f) }
    }

    @Test func crashBeforeTheManifestNamesAFlushedTable() async throws {
        // State: the SSTable (and a half-written .tmp) exist, the manifest does not list them.
        let dir = TemporaryDirectory("crashpoint")
        defer { dir.remove() }
        var engine = try await open(dir.path)
        try await write(engine, 0..<100, tag: "a")
        try await engine.flush()
        await engine.close()
        let flushed = fileNames(dir.path).filter { $0.hasSuffix(".sst") }
        // Roll the manifest back to "nothing flushed" while the WAL segments are still there.
        let saved = TemporaryDirectory("crashpoint-saved")
        defer { saved.remove() }
        engine = try await open(saved.path)
        try await write(engine, 0..<100, tag: "a")
        await engine.close()
        try copy(flushed, from: dir.path, to: saved.path)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: saved.path + "/000000000099.sst.tmp"))
        try Data([9, 9]).write(to: URL(fileURLWithPath: saved.path + "/MANIFEST.tmp"))

        engine = try await open(saved.path)
        try await expectValues(engine, 0..<100, tag: "a")
        #expect(await engine.stats().tableCount == 0, "unlisted tables are not used")
        let names = fileNames(saved.path)
        #expect(!names.contains { $0.hasSuffix(".tmp") })
        #expect(!names.contains { $0.hasSuffix(".sst") })
        await engine.close()
    }

    @Test func crashAfterTheManifestBeforeWALSegmentsAreDeleted() async throws {
        let dir = TemporaryDirectory("crashpoint")
        defer { dir.remove() }
        var engine = try await open(dir.path)
        try await write(engine, 0..<300, tag: "a")
        await engine.close()
        let segments = fileNames(dir.path).filter { $0.hasPrefix("wal-") }
        let saved = TemporaryDirectory("crashpoint-saved")
        defer { saved.remove() }
        try copy(segments, from: dir.path, to: saved.path)

        engine = try await open(dir.path)
        try await engine.flush()
        try await write(engine, 0..<50, tag: "b")  // newer versions after the flush
        await engine.close()
        // Put the obsolete segments back, as if the crash came before their deletion.
        for s in segments where !fileNames(dir.path).contains(s) {
            try FileManager.default.copyItem(atPath: saved.path + "/" + s, toPath: dir.path + "/" + s)
        }
        engine = try await open(dir.path)
        try await expectValues(engine, 0..<50, tag: "b")
        try await expectValues(engine, 50..<300, tag: "a")
        await engine.close()
        for s in segments { #expect(!fileNames(dir.path).contains(s), "obsolete segment \(s) removed on open") }
    }

    @Test func crashAfterACompactionManifestBeforeInputsAreDeleted() async throws {
        let dir = TemporaryDirectory("crashpoint")
        defer { dir.remove() }
        var engine = try await open(dir.path)
        for round in 0..<3 {
            try await write(engine, (round * 50)..<(round * 50 + 100), tag: "r\(round)")
            try await engine.flush()
        }
        await engine.close()
        let inputs = fileNames(dir.path).filter { $0.hasSuffix(".sst") }
        #expect(inputs.count == 3)
        let saved = TemporaryDirectory("crashpoint-saved")
        defer { saved.remove() }
        try copy(inputs, from: dir.path, to: saved.path)

        engine = try await open(dir.path)
        try await engine.compact()
        #expect(await engine.stats().tableCount == 1)
        await engine.close()
        try copy(inputs, from: saved.path, to: dir.path)

        engine = try await open(dir.path)
        #expect(await engine.stats().tableCount == 1)
        try await expectValues(engine, 0..<50, tag: "r0")
        try await expectValues(engine, 50..<100, tag: "r1")
        try await expectValues(engine, 100..<200, tag: "r2")
        await engine.close()
        for f in inputs { #expect(!fileNames(dir.path).contains(f)) }
    }
}
