import CKVSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A serial executor on a thread of its own, run at a lower scheduling priority (nice +10
/// by default): where an engine's flusher and compactor run. Writing SSTables and merging
/// them is work that can wait while the shard's loop answers requests; at nice +10 the
/// kernel gives a busy loop thread about ten times this thread's share of a contended core,
/// as ScyllaDB's scheduler gives compaction fewer shares than queries. When the loop is
/// idle the background work gets the whole core; if it falls behind, the write stall
/// (back-pressure) lets it catch up.
///
/// One per engine; `shutdown()` ends the thread once the jobs queued so far have run.
final class BackgroundExecutor: SerialExecutor, @unchecked Sendable {
    /// Guards `jobs` and `stopping`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private let niceness: Int32
    /// The executor's thread; set once, before it starts.
    private var thread: Thread?

    /// Starts the thread; `niceness` is added to the process's (0 keeps its priority).
    init(name: String, niceness: Int32 = 10) {
        self.niceness = niceness
        let thread = Thread { [self] in
            nameCurrentThread(name)
            run()
        }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    /// True on the executor's own thread, so code there may run its actors' methods in place.
    func isIsolatingCurrentContext() -> Bool? { Thread.current === thread }

    func checkIsolated() { precondition(Thread.current === thread, "expected to run on \(thread?.name ?? "")") }

    /// Lets the thread finish the queued jobs and exit. Idempotent.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        // On Linux a thread's nice value is its own: this lowers only this thread.
        if niceness != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
        let me = asUnownedSerialExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            let stop = stopping
            condition.unlock()
            for job in batch { job.runSynchronously(on: me) }
            if stop && batch.isEmpty { return }
        }
    }
}

/// Names the calling thread for `ps`, `top` and `perf` (the first 15 bytes).
/// Foundation's `Thread.name` does not reach the OS thread on Linux, so without this a
/// thread shows its creator's name (the shard's loop, `kv-loop-0`).
func nameCurrentThread(_ name: String) {
    kv_set_thread_name(name)
}
