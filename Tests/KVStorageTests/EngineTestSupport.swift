import Foundation
import KVCore
import Logging
import Synchronization
@testable import KVStorage

/// A wall clock the test moves by hand.
final class ManualClock: WallClock {
    private let millis: Atomic<UInt64>
    init(_ start: UInt64 = 1_700_000_000_000) { millis = Atomic(start) }
    func nowMillis() -> UInt64 { millis.load(ordering: .relaxed) }
    func advance(by delta: UInt64) { millis.add(delta, ordering: .relaxed) }
}

/// Settings that make flushes and compactions happen after a few hundred writes.
func tinySettings(commitMode: CommitMode = .periodic(milliseconds: 1000)) -> StorageSettings {
    var s = StorageSettings()
    s.commitMode = commitMode
    s.wal.segmentBytes = 16 << 10
    s.memtableBytes = 8 << 10
    s.tables.blockSizeBytes = 512
    s.tables.blockCacheBytes = 64 << 10
    s.tables.targetFileSizeBytes = 16 << 10
    s.tables.compaction.minThreshold = 3
    s.tables.compaction.minSSTableSizeBytes = 1 << 10
    return s
}


/// Default settings but 64 KiB WAL segments (new segments are zero-filled: keep that cheap).
func smallStorageSettings() -> StorageSettings {
    var s = StorageSettings()
    s.wal.segmentBytes = 64 << 10
    return s
}

/// Names of the files in `path` (recursively not).
func fileNames(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// A logger that prints only errors, so test output stays readable.
let quietLogger: Logger = {
    var logger = Logger(label: "kvd.storage.test")
    logger.logLevel = .critical
    return logger
}()
