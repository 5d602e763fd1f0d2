/// The `SerialExecutor` face of an `EventLoop`: actors placed on the loop run their jobs on
/// its thread, so calls between actors of one loop never leave the thread (≈ 25 ns a hop).
///
/// ```swift
/// actor Shard {
///     let loop: EventLoop
///     nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }
/// }
/// ```
public final class EventLoopActorExecutor: SerialExecutor, @unchecked Sendable {
    /// The loop whose thread runs the jobs.
    public let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) { loop.enqueue(.actorJob(UnownedJob(job))) }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    public func checkIsolated() {
        precondition(loop.inEventLoop, "expected to run on \(loop)")
    }

    public func isIsolatingCurrentContext() -> Bool? { loop.inEventLoop }
}

/// The `TaskExecutor` face of an `EventLoop`: tasks created with
/// `Task(executorPreference: loop.taskExecutor)` (or `group.addTask(executorPreference:)`)
/// run their nonisolated code on the loop's thread, next to the loop's sockets and actors.
/// A separate object from the actor face so the loop runs each job with the right identity.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    /// The loop whose thread runs the jobs.
    public let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) { loop.enqueue(.taskJob(UnownedJob(job))) }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor { UnownedTaskExecutor(ordinary: self) }
}
