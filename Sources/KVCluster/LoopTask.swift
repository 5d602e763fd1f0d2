import KVRuntime

/// Starting the per-replica tasks of a request where the request runs.
enum LoopTask {
    /// Starts `body` as a new task that prefers the calling thread's event loop (so a
    /// request handled on a loop fans out without waking another thread: a cross-thread
    /// wake costs ~50–80 µs on this VM), or on the global pool when not called from a loop.
    /// The task is not awaited: it records its outcome in a `ReplicaRound`.
    static func start(_ body: sending @escaping () async -> Void) {
        Task(executorPreference: EventLoop.current?.taskExecutor, operation: body)
    }
}
