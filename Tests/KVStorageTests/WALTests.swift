import Foundation
import KVCore
import Testing
@testable import KVStorage

/// WAL settings with 64 KiB segments, so zero-filling them costs nothing in tests.
func smallWAL(_ mode: CommitMode = .sync) -> WALSettings {
    var s = WALSettings(commitMode: mode)
    s.segmentBytes = 64 << 10
    return s
}

func entry(_ key: String, _ value: String, at millis: UInt64 = 1) -> Entry {
    Entry(key: Key(key), record: .value(Value(value), at: Timestamp(physicalMillis: millis, logical: 0)))
}

@Suite struct WALTests {
    @discardableResult
    func writeBatches(_ dir: String, _ batches: [[Entry]], settings: WALSettings = smallWAL()) async throws -> WAL {
        let recovery = try WAL.recover(directory: dir, startSegment: 1, firstSequence: 1)
        let wal = WAL(
            directory: dir, settings: settings, nextSegment: recovery.nextSegment,
            nextSequence: recovery.nextSequence)
        for b in batches {
            let ticket = try wal.append(b)
            try await wal.waitUntilDurable(ticket)
        }
        await wal.close()
        return wal
    }

    func segmentPaths(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("wal-") }.sorted()
            .map { dir + "/" + $0 }
    }

    @Test func recoversBatchesInOrderAcrossSegments() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL()
        settings.segmentBytes = 4096  // force several segments
        let batches = (0..<200).map { i in [entry("k\(i)", String(repeating: "v", count: i % 50)), entry("x\(i)", "")] }
        try await writeBatches(dir.path, batches, settings: settings)
        #expect(try segmentPaths(dir.path).count > 3)
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.map(\.entries) == batches)
        #expect(recovery.batches.first?.sequence == 1)
        #expect(recovery.nextSequence == 401)
        #expect(recovery.truncated.isEmpty)
    }

    @Test func groupCommitSharesSyncsAmongConcurrentWriters() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let wal = WAL(directory: dir.path, settings: smallWAL(), nextSegment: 1, nextSequence: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<16 {
                group.addTask {
                    for i in 0..<25 {
                        let ticket = try wal.append([entry("w\(w)-\(i)", "v")])
                        try await wal.waitUntilDurable(ticket)
                    }
                }
            }
            try await group.waitForAll()
        }
        let stats = wal.statistics
        await wal.close()
        #expect(stats.syncedFrames == 400)
        #expect(stats.syncs < 400, "16 concurrent writers must share syncs")
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 400)
    }

    @Test func periodicModeWritesWithoutWaitingAndSyncsOnClose() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await writeBatches(
            dir.path, (0..<100).map { [entry("p\($0)", "v")] }, settings: smallWAL(.periodic(milliseconds: 50)))
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 100)
    }

    @Test func tornTailIsTruncatedAndLaterWritesSurvive() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await writeBatches(dir.path, (0..<10).map { [entry("t\($0)", "value-\($0)")] })
        let path = try segmentPaths(dir.path)[0]
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        // The last frame is 24 + 1 + 17ish bytes; cut into its middle.
        let contents = try WALSegment.read(Array(try Data(contentsOf: URL(fileURLWithPath: path))), segment: 1, path: path)
        try h.truncate(atOffset: UInt64(contents.validEnd - 5))
        try h.close()
        var recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 9)
        #expect(recovery.truncated.count == 1)
        // Writes after recovery go to a new segment; the truncated one now reads clean.
        let wal = WAL(directory: dir.path, settings: smallWAL(), nextSegment: recovery.nextSegment, nextSequence: recovery.nextSequence)
        try await wal.waitUntilDurable(try wal.append([entry("after", "x")]))
        await wal.close()
        recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 10)
        #expect(recovery.batches.last?.entries == [entry("after", "x")])
    }

    @Test func flippedBitInLastFrameIsATornTail() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await writeBatches(dir.path, (0..<10).map { [entry("t\($0)", "value-\($0)")] })
        let path = try segmentPaths(dir.path)[0]
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let contents = try WALSegment.read(bytes, segment: 1, path: path)
        bytes[contents.validEnd - 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 9)
    }

    @Test func damageBeforeTheTailRefusesToOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL()
        settings.segmentBytes = 8192  // a small file keeps 120 recoveries fast
        try await writeBatches(dir.path, (0..<10).map { [entry("t\($0)", "value-\($0)")] }, settings: settings)
        let path = try segmentPaths(dir.path)[0]
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        // Flip one bit at every byte of the first three frames: each must be refused.
        for offset in WALSegment.headerSize..<(WALSegment.headerSize + 120) {
            var bytes = original
            bytes[offset] ^= 0x04
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(throws: KVError.self) {
                _ = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
            }
        }
    }

    @Test func truncatedCompletedSegmentRefusesToOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL()
        settings.segmentBytes = 1024
        try await writeBatches(dir.path, (0..<100).map { [entry("t\($0)", "value-\($0)")] }, settings: settings)
        let paths = try segmentPaths(dir.path)
        #expect(paths.count >= 3)
        let h = try #require(FileHandle(forUpdatingAtPath: paths[1]))
        let contents = try WALSegment.read(Array(try Data(contentsOf: URL(fileURLWithPath: paths[1]))), segment: 2, path: paths[1])
        try h.truncate(atOffset: UInt64(contents.validEnd - 30))
        try h.close()
        #expect(throws: KVError.self) {
            _ = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        }
    }

    @Test func releasedSegmentsAreRecycledWithoutResurrectingOldFrames() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL()
        settings.segmentBytes = 2048
        let wal = WAL(directory: dir.path, settings: settings, nextSegment: 1, nextSequence: 1)
        for i in 0..<60 { try await wal.waitUntilDurable(try wal.append([entry("a\(i)", "old-value-\(i)")])) }
        let next = wal.rotate()
        try await wal.waitUntilDurable(try wal.append([entry("b0", "new")]))
        wal.release(below: next)
        for i in 1..<40 { try await wal.waitUntilDurable(try wal.append([entry("b\(i)", "new")])) }
        await wal.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!names.contains(WALSegment.fileName(1)))
        let recovery = try WAL.recover(directory: dir.path, startSegment: next, firstSequence: 1)
        #expect(recovery.batches.flatMap(\.entries).map(\.key) == (0..<40).map { Key("b\($0)") })
    }

    @Test func newSegmentsAreZeroFilledAheadOfUse() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL()
        settings.segmentBytes = 8192
        let wal = WAL(directory: dir.path, settings: settings, nextSegment: 1, nextSequence: 1)
        for i in 0..<300 { try await wal.waitUntilDurable(try wal.append([entry("z\(i)", "value-\(i)-" + String(repeating: "v", count: 60))])) }
        await wal.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        let segments = names.filter { $0.hasPrefix("wal-") }
        #expect(segments.count > 2)
        for name in segments {
            let size = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + name)[.size] as? Int
            #expect((size ?? 0) >= 8192, "\(name) was written into a full-size, zero-filled file")
        }
        #expect(wal.statistics.bytesWritten >= UInt64(8192 * segments.count))
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 300)
    }

    /// `periodic` mode maps its segments: each file is reserved at full size up front (no
    /// zero-filling pass is written), frames end where zeros begin, and a frame torn by a
    /// kill mid-copy is dropped by recovery.
    @Test func periodicSegmentsAreMappedAndRecoverFromATornTail() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL(.periodic(milliseconds: 20))
        settings.segmentBytes = 8192
        #expect(!settings.preallocates && WALSettings(commitMode: .sync).preallocates)
        let wal = try await writeBatches(
            dir.path, (0..<300).map { [entry("g\($0)", "value-\($0)-" + String(repeating: "v", count: 60))] },
            settings: settings)
        #expect(wal.mapsSegments)
        let stats = wal.statistics
        #expect(stats.bytesWritten < 300 * 120, "frames only: no zeros were written")
        #expect(stats.syncs >= 1 && stats.syncedFrames == 300, "closing syncs every frame")
        let paths = try segmentPaths(dir.path)
        #expect(paths.count > 2)
        let last = try #require(paths.last)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: last)))
        #expect(bytes.count == 8192, "a mapped segment is reserved at its full size")
        let contents = try WALSegment.read(bytes, segment: UInt64(paths.count), path: last)
        #expect(!contents.damagedTail && contents.validEnd < bytes.count)
        #expect(bytes[contents.validEnd...].allSatisfy { $0 == 0 })
        // A kill in the middle of copying the last frame: its end never arrived.
        for i in (contents.validEnd - 3)..<contents.validEnd { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: last))
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 299 && recovery.truncated.count == 1)
    }

    /// `periodic` mode's appends take no lock and never signal the syncing thread: it must
    /// still find and sync them within a period or so, with no close to force it; an
    /// append after close fails.
    @Test func periodicModeSyncsAppendsWithinAPeriodWithoutBeingTold() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var settings = smallWAL(.periodic(milliseconds: 20))
        settings.segmentBytes = 8192
        let wal = WAL(directory: dir.path, settings: settings, nextSegment: 1, nextSequence: 1)
        for i in 0..<200 { _ = try wal.append([entry("q\(i)", String(repeating: "v", count: 40))]) }
        let deadline = ContinuousClock.now + .seconds(10)
        while wal.statistics.syncedFrames < 200 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let stats = wal.statistics
        #expect(stats.syncedFrames == 200, "the syncing thread found every appended frame")
        #expect(stats.syncs >= 1 && stats.syncs < 200, "one sync covers many frames")
        await wal.close()
        #expect(throws: KVError.closed) { _ = try wal.append([entry("late", "x")]) }
        let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
        #expect(recovery.batches.count == 200)
    }

    /// The window between renaming a spare into place as the next segment and making its
    /// header durable: a kill there leaves a last segment of zeros or of a recycled
    /// segment's old bytes. Nothing in it was acknowledged, so recovery drops it.
    @Test func aSpareRenamedInPlaceWithoutItsHeaderIsAnEmptyTail() async throws {
        for spareKind in ["zeros", "recycled"] {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            try await writeBatches(dir.path, (0..<20).map { [entry("s\($0)", "value-\($0)")] })
            let first = try segmentPaths(dir.path)[0]
            let spare = spareKind == "zeros" ? Data(count: 4096) : try Data(contentsOf: URL(fileURLWithPath: first))
            try spare.write(to: URL(fileURLWithPath: dir.path + "/" + WALSegment.fileName(2)))
            let recovery = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
            #expect(recovery.batches.count == 20, "\(spareKind)")
            #expect(recovery.truncated.map(\.0) == [2], "\(spareKind)")
            // And the log goes on after it.
            let wal = WAL(directory: dir.path, settings: smallWAL(), nextSegment: recovery.nextSegment, nextSequence: recovery.nextSequence)
            try await wal.waitUntilDurable(try wal.append([entry("after", "x")]))
            await wal.close()
            let again = try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1)
            #expect(again.batches.count == 21 && again.batches.last?.entries == [entry("after", "x")], "\(spareKind)")
        }
    }

    @Test func aDamagedHeaderOverFramesIsStillCorruption() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await writeBatches(dir.path, (0..<5).map { [entry("h\($0)", "value-\($0)")] })
        let path = try segmentPaths(dir.path)[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in 0..<16 { bytes[i] = 0 }  // the header zeroed, its frames intact
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: KVError.self) { try WAL.recover(directory: dir.path, startSegment: 1, firstSequence: 1) }
    }
}
