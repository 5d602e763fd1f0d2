/// An actor with no state whose executor is an event loop's: code isolated to it runs on
/// the loop's thread *as that loop's serial executor*, so calls into other actors of the
/// same loop (a shard's `StorageEngine`, say) switch executors without a job: the runtime
/// sees the same executor identity and runs the callee inline.
///
/// A task that merely prefers the loop (`Task(executorPreference: loop.taskExecutor)`) also
/// runs on the loop's thread, but as the generic executor: every call into a loop actor
/// enqueues one job there and one back (measured at about 7 % of a RESP SET's CPU).
///
/// The price: a continuation resumed by the loop (a socket read, say) resumes on the task
/// executor and then hops to this actor, two queued jobs per wake-up instead of one. Worth
/// it where the code calls loop actors a lot (`RPCServer`); client connections call the
/// shard's in-place paths instead and run without it (`TCPListener.run`).
///
/// ```swift
/// await loop.isolation.run { _ in await serve(connection) }  // nonsending callees stay on the loop
/// ```
public actor LoopIsolation {
    /// The loop whose thread and serial executor this actor uses.
    public nonisolated let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }

    /// Runs `body` isolated to the loop; `nonisolated(nonsending)` functions it calls inherit
    /// the isolation. Cost: one executor switch onto the loop when called from elsewhere.
    public func run<T: Sendable, E: Error>(_ body: @Sendable (isolated LoopIsolation) async throws(E) -> T) async throws(E) -> T {
        try await body(self)
    }
}
