import Foundation
import KVCore
import Testing
@testable import KVStorage

#if canImport(Glibc)
import Glibc
#endif

/// An actor placed on a `BackgroundExecutor`, reporting where its jobs run.
private actor BackgroundProbe {
    let executor: BackgroundExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    init(executor: BackgroundExecutor) { self.executor = executor }

    /// The OS name of the thread running this job.
    func threadName() -> String {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// The nice value of the thread running this job (Linux: per thread).
    func niceness() -> Int32 {
        errno = 0
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }
}

@Suite struct BackgroundExecutorTests {
    @Test func jobsRunOnAThreadAtLowerPriority() async {
        let executor = BackgroundExecutor(name: "kv-bg-test", niceness: 10)
        defer { executor.shutdown() }
        let probe = BackgroundProbe(executor: executor)
        let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #expect(await probe.niceness() == min(base + 10, 19))
    }

    /// The thread carries the executor's name in `ps` and `perf`, not its creator's.
    @Test func theThreadIsNamed() async {
        let executor = BackgroundExecutor(name: "kv-bg-named-and-long", niceness: 0)
        defer { executor.shutdown() }
        #expect(await BackgroundProbe(executor: executor).threadName() == "kv-bg-named-and")
    }

    @Test func anEngineFlushesOnItsBackgroundThread() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kv-bg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try await StorageEngine.open(directory: dir)
        try await engine.put(Key("k"), Value("v"), at: Timestamp(rawValue: 1))
        try await engine.flush()
        #expect(await engine.stats().tableCount == 1)
        #expect(try await engine.value(for: Key("k")) == Value("v"))
        await engine.close()
    }
}
