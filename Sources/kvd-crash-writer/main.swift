// The child process of KVStorageTests' crash tests. It opens the engine in `sync`
// commit mode (or `periodic`, with a third argument `periodic`) and writes (and sometimes deletes) keys from 8 concurrent tasks until
// it is killed, reporting on stdout, one line each:
//   `A <key>`  before applying a put of <key> (an attempt; may or may not survive)
//   `P <key>`  after the put was acknowledged (must survive the crash)
//   `d <key>`  before applying a delete of an acknowledged key
//   `D <key>`  after the delete was acknowledged
// Values are a function of the key (`CrashWorkload.value(for:)`), so the parent can
// check every byte. Usage: kvd-crash-writer DIRECTORY ROUND [sync|periodic]
#if canImport(Glibc)
import Glibc
#endif
import KVCore
import KVStorage
import Synchronization

/// Writes a line to stdout with one `write` call (atomic for short lines, unbuffered).
func report(_ tag: Character, _ key: Key) {
    let line = Array("\(tag) \(String(decoding: key.bytes, as: UTF8.self))\n".utf8)
    line.withUnsafeBytes { raw in _ = write(1, raw.baseAddress, raw.count) }
}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let round = UInt64(arguments[2]),
    arguments.count == 3 || ["sync", "periodic"].contains(arguments[3])
else {
    print("usage: kvd-crash-writer DIRECTORY ROUND [sync|periodic]")
    exit(2)
}
let periodic = arguments.count == 4 && arguments[3] == "periodic"
let directory = arguments[1]
let hlc = Mutex(HybridLogicalClock())
let wallClock = SystemWallClock()

@concurrent func writer(engine: StorageEngine, task: Int) async throws {
    var i = 0
    var acknowledged: [Key] = []
    while true {
        let key = Key("r\(round)-t\(task)-\(i)")
        // Real HLC timestamps: a delete is newer than the put it deletes, and young
        // enough that compaction keeps its tombstone (grace period).
        let stamp = hlc.withLock { $0.now(wallMillis: wallClock.nowMillis()) }
        if i % 10 == 9, let victim = acknowledged.randomElement() {
            report("d", victim)
            try await engine.delete(victim, at: stamp)
            report("D", victim)
        } else {
            report("A", key)
            try await engine.put(key, CrashWorkload.value(for: key), at: stamp)
            report("P", key)
            acknowledged.append(key)
        }
        i += 1
    }
}

var settings = StorageSettings()
// Periodic: acknowledged at once, synced once a second; a kill must still lose nothing.
settings.commitMode = periodic ? .periodic(milliseconds: 1000) : .sync
settings.memtableBytes = 32 << 10  // flushes (and compactions) happen while the process runs
settings.wal.segmentBytes = 64 << 10
settings.tables.targetFileSizeBytes = 64 << 10
settings.tables.compaction.minThreshold = 3
settings.tables.compaction.minSSTableSizeBytes = 1 << 10
let engine = try await StorageEngine.open(directory: directory, settings: settings)
try await withThrowingTaskGroup(of: Void.self) { group in
    for task in 0..<8 { group.addTask { try await writer(engine: engine, task: task) } }
    try await group.waitForAll()
}

/// The value stored for a key: derived from the key so the parent can verify every
/// byte (KVStorageTests' `CrashTests` calls it through `@testable import`). 20–400 bytes.
enum CrashWorkload {
    static func value(for key: Key) -> Value {
        let hash = key.token.rawValue
        let length = 20 + Int(hash % 380)
        var bytes = [UInt8](repeating: 0, count: length)
        var state = hash
        for i in 0..<length {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        return Value(bytes)
    }
}
