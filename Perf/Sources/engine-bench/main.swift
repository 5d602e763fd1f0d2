// engine-bench: a db_bench-style runner for kvd's storage engine. Same flags and the
// same key generation as RocksDB's db_bench, one output line per benchmark in its form:
//   fillrandom   :       8.212 micros/op 121769 ops/sec;
// followed by latency percentiles and peak memory. See Perf/README.md.
#if canImport(Glibc)
import Glibc
#endif
import KVCore
import KVStorage
import Logging
import Synchronization

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Peak resident memory (VmHWM) in KiB.
func peakMemoryKiB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("VmHWM:") { return Int(s.split(separator: " ").dropFirst().first ?? "0") ?? 0 }
    }
    return 0
}

/// Versions must grow so that overwrites win: one shared counter, started at the wall clock.
let versionCounter = Atomic<UInt64>(Timestamp(physicalMillis: SystemWallClock().nowMillis(), logical: 0).rawValue)

enum Operation {
    case fillSequential, fillRandom, readRandom, readSequential
}

/// One client task's loop; runs on the global pool, not the main actor.
@concurrent func client(
    engine: StorageEngine, operation: Operation, ops: Int, thread: Int, flags: BenchmarkFlags, values: ValuePool
) async throws -> (Latencies, found: Int) {
    // Like db_bench, every client of every benchmark draws its own key sequence.
    var rng = SplitMix64(seed: flags.seed &+ UInt64(thread) &* 0x1000_0001)
    var latencies = Latencies()
    latencies.samples.reserveCapacity(ops)
    var found = 0
    let num = UInt64(flags.num)
    switch operation {
    case .fillSequential, .fillRandom:
        for i in 0..<ops {
            let k = operation == .fillSequential ? UInt64(i) % num : rng.next() % num
            let key = benchmarkKey(k, size: flags.keySize)
            let value = values.value(size: flags.valueSize, using: &rng)
            let version = Timestamp(rawValue: versionCounter.add(1, ordering: .relaxed).newValue)
            let start = monotonicNanos()
            try await engine.apply([Entry(key: key, record: .value(value, at: version))])
            latencies.add(monotonicNanos() - start)
        }
    case .readRandom:
        for _ in 0..<ops {
            let key = benchmarkKey(rng.next() % num, size: flags.keySize)
            let start = monotonicNanos()
            if try await engine.get(key) != nil { found += 1 }
            latencies.add(monotonicNanos() - start)
        }
    case .readSequential:
        var cursor: ScanCursor? = nil
        var read = 0
        while read < ops {
            let start = monotonicNanos()
            let page = try await engine.scan(tokens: Token.min...Token.max, after: cursor, limit: 1024)
            let elapsed = monotonicNanos() - start
            for _ in page.entries { latencies.add(elapsed / UInt64(max(1, page.entries.count))) }
            read += page.entries.count
            found += page.entries.count
            guard let next = page.resume else { break }
            cursor = next
        }
    }
    return (latencies, found)
}

@concurrent func runBenchmark(
    _ name: String, index: Int, engine: StorageEngine, flags: BenchmarkFlags, values: ValuePool
) async throws {
    var seeded = flags
    seeded.seed = flags.seed &+ UInt64(index) &* 1000
    let flags = seeded
    let operation: Operation
    switch name {
    case "fillseq": operation = .fillSequential
    case "fillrandom", "overwrite": operation = .fillRandom
    case "readrandom": operation = .readRandom
    case "readseq": operation = .readSequential
    default:
        print("unknown benchmark \(name)")
        return
    }
    let isRead = operation == .readRandom || operation == .readSequential
    let ops = isRead && flags.reads >= 0 ? flags.reads : flags.num
    let start = monotonicNanos()
    var all = Latencies()
    var found = 0
    try await withThrowingTaskGroup(of: (Latencies, found: Int).self) { group in
        for t in 0..<flags.threads {
            group.addTask {
                try await client(engine: engine, operation: operation, ops: ops, thread: t, flags: flags, values: values)
            }
        }
        for try await (latencies, f) in group {
            all.merge(latencies)
            found += f
        }
    }
    let seconds = Double(monotonicNanos() - start) / 1e9
    let total = ops * flags.threads
    let microsPerOp = seconds * 1e6 / Double(total) * Double(flags.threads)
    let opsPerSecond = Double(total) / seconds
    var line = name.padding(toLength: 12, withPad: " ", startingAt: 0) + " : "
    line += String(format3(microsPerOp)).leftPadded(11) + " micros/op " + String(Int(opsPerSecond)) + " ops/sec;"
    if isRead && operation == .readRandom { line += " (\(found) of \(total) found)" }
    print(line)
    let sorted = all.samples.sorted()
    print(
        "             : p50 \(format3(all.percentile(50, sorted: sorted))) µs, p99 \(format3(all.percentile(99, sorted: sorted))) µs, p99.9 \(format3(all.percentile(99.9, sorted: sorted))) µs, peak memory \(peakMemoryKiB() / 1024) MiB"
    )
}

func format3(_ x: Double) -> String {
    let scaled = Int((x * 1000).rounded())
    let fraction = String(scaled % 1000)
    return "\(scaled / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

@concurrent func main() async throws {
    let flags = try BenchmarkFlags.parse(Array(CommandLine.arguments.dropFirst()))
    var settings = StorageSettings()
    settings.commitMode = flags.sync ? .sync : .periodic(milliseconds: 1000)
    settings.memtableBytes = flags.writeBufferSize
    settings.wal.preallocate = flags.walZeroFill
    if flags.groupCommitWindowMicros >= 0 { settings.wal.groupCommitWindowMicros = flags.groupCommitWindowMicros }
    settings.tables.blockCacheBytes = flags.cacheSize
    let values = ValuePool(seed: flags.seed)
    var logger = Logger(label: "engine-bench")
    logger.logLevel = .warning
    print("engine-bench: keys \(flags.keySize) bytes, values \(flags.valueSize) bytes, \(flags.num) ops, \(flags.threads) threads, sync=\(flags.sync ? 1 : 0)")
    var engine: StorageEngine? = nil
    for (index, name) in flags.benchmarks.enumerated() {
        // Fill benchmarks start from an empty database, as in db_bench.
        if name.hasPrefix("fill") || engine == nil {
            await engine?.close()
            if name.hasPrefix("fill") { removeDirectory(flags.db) }
            engine = try await StorageEngine.open(directory: flags.db, settings: settings, logger: logger)
        }
        try await runBenchmark(name, index: index, engine: engine!, flags: flags, values: values)
    }
    if let engine {
        let s = await engine.stats()
        print(
            "stats        : tables \(s.tableCount) \(s.tablesPerLevel), write amplification \(format3(s.writeAmplification)), WAL syncs \(s.walSyncs) (mean group \(format3(s.walMeanGroupSize))), block cache hit rate \(format3(s.blockCacheHitRate)), stalls \(s.stalls)"
        )
        await engine.close()
    }
}

func removeDirectory(_ path: String) {
    guard let dir = opendir(path) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name == "." || name == ".." { continue }
        if name == "quarantine" { removeDirectory(path + "/" + name) } else { unlink(path + "/" + name) }
    }
    closedir(dir)
    rmdir(path)
}

try await main()
