import Atomics
import CKVSystem
import Glibc
import Synchronization

/// One OS thread that waits on epoll and runs the Swift jobs enqueued on it: the executor of
/// the actors placed on it (`actorExecutor`, a `SerialExecutor`), of the tasks that prefer it
/// (`taskExecutor`, a `TaskExecutor`), and the event loop of the sockets registered with it.
///
/// Work from the loop's own thread goes to a local queue with no lock (≈ 25 ns an actor hop).
/// Work from other threads goes to a lock-protected inbox that the loop takes whole, as one
/// batch; the eventfd is written only for the first item after the loop went to sleep, so a
/// burst of cross-loop messages costs one wake-up. Timers are kept in a heap and bound the
/// `epoll_wait` timeout (millisecond resolution).
///
/// A loop lives until its group shuts it down. Jobs enqueued after that run on a process-wide
/// fallback loop, so no task is ever stranded.
public final class EventLoop: @unchecked Sendable, CustomStringConvertible {
    // Unchecked: closures arrive either through `execute` (which demands `@Sendable`) or from
    // the loop's own thread, so a non-Sendable closure never crosses threads.
    enum Work: @unchecked Sendable {
        case actorJob(UnownedJob)
        case taskJob(UnownedJob)
        case closure(() -> Void)
    }

    private struct Inbox {
        var items: [Work] = []
        var sleeping = false
        var stopping = false
        var stopped = false
    }

    /// Position of this loop in its group (-1 for a loop outside any group).
    public let index: Int
    /// Where the loop was placed (core and NUMA node), or nil when unplaced.
    public let slot: LoopPlacement.Slot?
    public let settings: RuntimeSettings
    /// The executor for actors placed on this loop (`nonisolated var unownedExecutor`).
    public private(set) var actorExecutor: EventLoopActorExecutor!
    /// The executor for `Task(executorPreference:)` and `group.addTask(executorPreference:)`.
    public private(set) var taskExecutor: EventLoopTaskExecutor!
    /// An actor on this loop's serial executor, for running code isolated to the loop.
    public private(set) var isolation: LoopIsolation!

    private let epollFD: Int32
    private let wakeFD: Int32
    private let inbox = Mutex(Inbox())
    private let pending = ManagedAtomic<Bool>(false)
    private let nextTimerID = ManagedAtomic<UInt64>(1)
    private let pinned = ManagedAtomic<Int>(-1)
    private let jobsRun = ManagedAtomic<UInt64>(0)
    private let stoppedFlag = ManagedAtomic<Bool>(false)
    private let startedFlag = ManagedAtomic<Bool>(false)
    private let tid = ManagedAtomic<Int>(0)

    /// Kernel ids of the loop threads pinned to a core, process-wide (kept pinned by the
    /// affinity repair in `EventLoopGroup`).
    static let pinnedThreads = Mutex<Set<Int32>>([])
    private var thread = pthread_t()
    private var unownedActor: UnownedSerialExecutor!
    private var unownedTask: UnownedTaskExecutor!

    // Loop-thread state: touched only by the loop's own thread. `@exclusivity(unchecked)`:
    // every access is short (jobs and handlers run on copies taken out of these), and the
    // runtime's bookkeeping would cost calls on every turn and readiness event.
    @exclusivity(unchecked) private var local = WorkQueue<Work>()
    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var timerBodies: [UInt64: () -> Void] = [:]
    @exclusivity(unchecked) private var handlers: [UInt64: (fd: Int32, handler: any IOReadinessHandler)] = [:]
    private var nextToken: UInt64 = 1
    @exclusivity(unchecked) private var turnEndHandlers: [any LoopTurnHandler] = []
    @exclusivity(unchecked) private var turnEndRunning: [any LoopTurnHandler] = []

    /// A loop outside any group: unpinned unless `slot` is given and pinning is on.
    public init(index: Int = -1, slot: LoopPlacement.Slot? = nil, settings: RuntimeSettings = RuntimeSettings()) {
        self.index = index
        self.slot = slot
        self.settings = settings
        epollFD = kv_epoll_create()
        wakeFD = kv_eventfd_create()
        precondition(epollFD >= 0 && wakeFD >= 0, "event loop: epoll/eventfd creation failed, errno \(errno)")
        _ = kv_epoll_add(epollFD, wakeFD, UInt32(KV_EV_IN), 0)
        actorExecutor = EventLoopActorExecutor(loop: self)
        taskExecutor = EventLoopTaskExecutor(loop: self)
        unownedActor = actorExecutor.asUnownedSerialExecutor()
        unownedTask = taskExecutor.asUnownedTaskExecutor()
        isolation = LoopIsolation(loop: self)
        startThread()
        // Wait until the thread is placed, so `pinnedCPU` and `threadTID` are final (≈ 50 µs).
        while !startedFlag.load(ordering: .acquiring) { sched_yield() }
    }

    /// The loop thread's kernel id (gettid).
    public var threadTID: Int32 { Int32(tid.load(ordering: .relaxed)) }

    /// For `nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }`.
    public var unownedExecutor: UnownedSerialExecutor { unownedActor }

    /// The CPU this loop's thread is pinned to, or nil.
    public var pinnedCPU: Int? {
        let cpu = pinned.load(ordering: .relaxed)
        return cpu >= 0 ? cpu : nil
    }

    /// Jobs and closures this loop has run so far (for metrics).
    public var jobCount: UInt64 { jobsRun.load(ordering: .relaxed) }

    public var description: String {
        "EventLoop(\(index)\(slot.map { ", node \($0.node), cpu \($0.cpu)" } ?? ""))"
    }

    /// The loop whose thread is running this code, or nil.
    public static var current: EventLoop? {
        guard let raw = kv_thread_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    /// An identity of the calling OS thread that is re-read after every `await` (an out-of-line
    /// C call; `pthread_self` is `const` and can be cached by the optimizer).
    public static var currentThreadID: UInt64 { kv_thread_id() }

    /// The CPU the calling thread is running on now (`sched_getcpu`), or -1.
    public static var currentCPU: Int { Int(kv_current_cpu()) }

    /// True when called on this loop's thread — or, once the loop has stopped, on the
    /// fallback thread that took over its leftover work.
    @inline(__always) public var inEventLoop: Bool {
        let current = kv_thread_loop()
        if current == Unmanaged.passUnretained(self).toOpaque() { return true }
        return current != nil && hasStopped && current == Unmanaged.passUnretained(EventLoop.fallback).toOpaque()
    }

    /// True once the loop's thread has exited (after its group shut down).
    public var hasStopped: Bool { stoppedFlag.load(ordering: .acquiring) }

    /// Where jobs go once their loop has stopped.
    static let fallback = EventLoop(index: -1, settings: RuntimeSettings(pinThreads: false))

    // MARK: Enqueueing

    /// Runs `body` on the loop thread, after the work queued before it.
    public func execute(_ body: @escaping @Sendable () -> Void) { enqueue(.closure(body)) }

    /// Runs `body` on the loop thread and returns its result: the way to allocate memory on
    /// the loop's NUMA node (first touch) or to read loop-owned state.
    public func submit<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            execute {
                do throws(E) { continuation.resume(returning: .success(try body())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    func enqueue(_ work: Work) {
        if kv_thread_loop() == Unmanaged.passUnretained(self).toOpaque() {
            local.append(work)
            return
        }
        let wake: Bool? = inbox.withLock { state in
            if state.stopped { return nil }
            state.items.append(work)
            if state.sleeping {
                state.sleeping = false
                return true
            }
            return false
        }
        guard let wake else {
            forwardToFallback(work)
            return
        }
        pending.store(true, ordering: .releasing)
        if wake { _ = kv_eventfd_signal(wakeFD) }
    }

    private func forwardToFallback(_ work: Work) {
        let actor = unownedActor!, task = unownedTask!
        switch work {
        case .actorJob(let job): EventLoop.fallback.enqueue(.closure { job.runSynchronously(on: actor) })
        case .taskJob(let job): EventLoop.fallback.enqueue(.closure { job.runSynchronously(on: task) })
        case .closure: EventLoop.fallback.enqueue(work)
        }
    }

    @inline(__always) private func run(_ work: Work) {
        switch work {
        case .actorJob(let job): job.runSynchronously(isolatedTo: unownedActor, taskExecutor: unownedTask)
        case .taskJob(let job): job.runSynchronously(on: unownedTask)
        case .closure(let body): body()
        }
    }

    /// Calls `handler.loopTurnEnded()` once the loop has run its current batch of jobs, before
    /// it polls for I/O: work queued during the turn can then be done once for all of it (one
    /// `send` for many frames). Loop thread only; costs an array append. Handlers registered
    /// while end-of-turn handlers run are called in the same pass.
    public func atEndOfTurn(_ handler: any LoopTurnHandler) {
        precondition(inEventLoop, "atEndOfTurn is for the loop's own thread")
        turnEndHandlers.append(handler)
    }

    /// Runs the end-of-turn handlers, and those they register (a few rounds at most).
    private func endTurn() {
        var rounds = 0
        while !turnEndHandlers.isEmpty && rounds < 8 {
            rounds += 1
            swap(&turnEndHandlers, &turnEndRunning)
            for handler in turnEndRunning { handler.loopTurnEnded() }
            turnEndRunning.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Timers

    /// Calls `body` on the loop thread once `delay` has passed (millisecond resolution).
    /// Timers still pending when the loop shuts down fire then, early, so nothing waits forever.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> LoopTimer {
        if hasStopped { return EventLoop.fallback.schedule(after: delay, body) }
        let id = nextTimerID.loadThenWrappingIncrement(ordering: .relaxed)
        let deadline = kv_monotonic_nanos() &+ delay.nanoseconds
        if inEventLoop {
            addTimer(id: id, deadline: deadline, body: body)
        } else {
            enqueue(.closure { self.addTimer(id: id, deadline: deadline, body: body) })
        }
        return LoopTimer(loop: self, id: id)
    }

    /// Like `schedule(after:_:)` for code already on the loop thread (the body need not be `Sendable`).
    @discardableResult
    public func scheduleOnLoop(after delay: Duration, _ body: @escaping () -> Void) -> LoopTimer {
        precondition(inEventLoop, "scheduleOnLoop called off \(self)")
        if hasStopped { return EventLoop.fallback.scheduleOnLoop(after: delay, body) }
        let id = nextTimerID.loadThenWrappingIncrement(ordering: .relaxed)
        addTimer(id: id, deadline: kv_monotonic_nanos() &+ delay.nanoseconds, body: body)
        return LoopTimer(loop: self, id: id)
    }

    /// Suspends the caller for `delay`, measured by this loop's timers.
    public func sleep(for delay: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            schedule(after: delay) { continuation.resume() }
        }
    }

    private func addTimer(id: UInt64, deadline: UInt64, body: @escaping () -> Void) {
        timerBodies[id] = body
        timers.push(deadline: deadline, id: id)
    }

    func cancelTimer(_ id: UInt64) {
        if inEventLoop {
            timerBodies[id] = nil
        } else {
            enqueue(.closure { self.timerBodies[id] = nil })
        }
    }

    private func fireTimers(now: UInt64) {
        while let entry = timers.popExpired(now: now) {
            if let body = timerBodies.removeValue(forKey: entry.id) { body() }
        }
    }

    /// Milliseconds until the next live timer (rounded up), or -1 when there is none.
    private func pollTimeout(now: UInt64) -> Int32 {
        while let next = timers.nextDeadline {
            guard let first = timers.popExpired(now: UInt64.max), timerBodies[first.id] != nil else { continue }
            timers.push(deadline: first.deadline, id: first.id)
            if next <= now { return 0 }
            let millis = (next - now + 999_999) / 1_000_000
            return Int32(min(millis, UInt64(Int32.max)))
        }
        return -1
    }

    // MARK: I/O registration (loop thread only)

    /// Watches `fd` for `events`; `handler` is called on this loop's thread. Call on the loop.
    public func register(fd: Int32, events: IOEvents, handler: any IOReadinessHandler) throws(KVLoopError)
        -> IORegistration
    {
        precondition(inEventLoop, "register called off \(self)")
        if hasStopped { throw .loopStopped }
        let token = nextToken
        nextToken += 1
        guard kv_epoll_add(epollFD, fd, events.rawValue, token) == 0 else {
            throw .registrationFailed(fd: fd, errno: errno)
        }
        handlers[token] = (fd, handler)
        return IORegistration(fd: fd, token: token)
    }

    /// Changes the events watched for a registration. Call on the loop.
    public func modify(_ registration: IORegistration, events: IOEvents) throws(KVLoopError) {
        precondition(inEventLoop, "modify called off \(self)")
        if hasStopped { throw .loopStopped }
        guard kv_epoll_modify(epollFD, registration.fd, events.rawValue, registration.token) == 0 else {
            throw .registrationFailed(fd: registration.fd, errno: errno)
        }
    }

    /// Stops watching a descriptor (call before closing it). Call on the loop.
    public func deregister(_ registration: IORegistration) {
        precondition(inEventLoop, "deregister called off \(self)")
        if hasStopped { return }
        if handlers.removeValue(forKey: registration.token) != nil {
            _ = kv_epoll_remove(epollFD, registration.fd)
        }
    }

    // MARK: The thread

    private final class ThreadStart {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private func startThread() {
        let start = Unmanaged.passRetained(ThreadStart { [self] in runLoop() }).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            // The retained ThreadStart is consumed here, exactly once.
            Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, start)
        precondition(rc == 0, "event loop: pthread_create failed (\(rc))")
    }

    private func placeThread() {
        kv_set_thread_name(index >= 0 ? "kv-loop-\(index)" : "kv-loop")
        tid.store(Int(kv_thread_tid()), ordering: .relaxed)
        guard let slot else { return }
        if settings.pinThreads {
            // Listed before pinning, so a concurrent affinity repair never widens this thread.
            let me = kv_thread_tid()
            _ = EventLoop.pinnedThreads.withLock { $0.insert(me) }
            if kv_pin_current_thread(Int32(slot.cpu)) == 0 {
                pinned.store(slot.cpu, ordering: .relaxed)
            } else {
                _ = EventLoop.pinnedThreads.withLock { $0.remove(me) }
            }
        }
        if settings.preferLocalNUMANode { _ = kv_numa_prefer_node(Int32(slot.node)) }
    }

    private func runLoop() {
        kv_set_thread_loop(Unmanaged.passUnretained(self).toOpaque())
        placeThread()
        startedFlag.store(true, ordering: .releasing)
        let capacity = max(1, min(256, settings.eventsPerPoll))
        var events = [kv_event](repeating: kv_event(), count: capacity)
        var batch: [Work] = []
        batch.reserveCapacity(256)
        let spinNanos = settings.idleSpin.nanoseconds
        var ran: UInt64 = 0
        var turnDeferred = false
        while true {
            var budget = settings.jobsPerTick
            while budget > 0, let work = local.popFirst() {
                run(work)
                budget -= 1
                ran &+= 1
            }
            if pending.load(ordering: .acquiring) {
                pending.store(false, ordering: .relaxed)
                inbox.withLock { swap(&$0.items, &batch) }
                ran &+= UInt64(batch.count)
                for work in batch { run(work) }
                batch.removeAll(keepingCapacity: true)
            }
            jobsRun.store(ran, ordering: .relaxed)
            var now = kv_monotonic_nanos()
            fireTimers(now: now)
            // The turn ends once the jobs it queued ran (or the budget is spent): jobs queued
            // by the inbox batch or by timers run first, in one more pass at most, so steady
            // cross-thread work cannot postpone the end of the turn for ever.
            if local.isEmpty || budget == 0 || turnDeferred {
                turnDeferred = false
                endTurn()
            } else {
                turnDeferred = true
            }

            var timeout: Int32 = 0
            if local.isEmpty {
                if spinNanos > 0 && !pending.load(ordering: .acquiring) {
                    if spin(until: now &+ spinNanos, events: &events) { continue }
                    now = kv_monotonic_nanos()
                }
                let wait = pollTimeout(now: now)
                let decision: (sleep: Bool, stop: Bool) = inbox.withLock { state in
                    if !state.items.isEmpty {
                        swap(&state.items, &batch)
                        return (false, false)
                    }
                    if state.stopping { return (false, true) }
                    state.sleeping = wait != 0
                    return (wait != 0, false)
                }
                if decision.stop { break }
                if !batch.isEmpty {
                    ran &+= UInt64(batch.count)
                    for work in batch { run(work) }
                    batch.removeAll(keepingCapacity: true)
                    continue
                }
                timeout = decision.sleep ? wait : 0
            }
            let n = events.withUnsafeMutableBufferPointer { kv_epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout) }
            if timeout != 0 { inbox.withLock { $0.sleeping = false } }
            if n > 0 { dispatch(events, count: Int(n)) }
        }
        closeDown()
    }

    /// Polls for work until `deadline`; true when something arrived (run the loop again).
    private func spin(until deadline: UInt64, events: inout [kv_event]) -> Bool {
        var round = 0
        while kv_monotonic_nanos() < deadline {
            if pending.load(ordering: .acquiring) { return true }
            round += 1
            if round % 32 == 0 {
                let n = events.withUnsafeMutableBufferPointer { kv_epoll_wait(epollFD, $0.baseAddress, Int32($0.count), 0) }
                if n > 0 {
                    dispatch(events, count: Int(n))
                    return true
                }
            }
        }
        return false
    }

    private func dispatch(_ events: [kv_event], count: Int) {
        for i in 0..<count {
            let event = events[i]
            if event.token == 0 {
                kv_eventfd_drain(wakeFD)
                continue
            }
            // A handler may have deregistered an fd whose event is still in this batch.
            handlers[event.token]?.handler.ioReady(IOEvents(rawValue: event.events))
        }
    }

    private func drainOnce() -> Bool {
        var any = false
        while let work = local.popFirst() {
            run(work)
            any = true
        }
        var batch: [Work] = []
        inbox.withLock { swap(&$0.items, &batch) }
        for work in batch { run(work) }
        let ended = !turnEndHandlers.isEmpty
        endTurn()
        return any || !batch.isEmpty || ended
    }

    private func closeDown() {
        // Fail I/O waiters first (they see `.closed`, not a timeout), then fire the timers
        // still pending, early, so nobody waits on them.
        let open = handlers
        handlers.removeAll()
        for (_, registration) in open {
            _ = kv_epoll_remove(epollFD, registration.fd)
            registration.handler.loopClosing()
        }
        // A callback that schedules again is fired again, a few rounds at most.
        for _ in 0..<3 where !timers.isEmpty {
            var due: [TimerHeap.Entry] = []
            while let entry = timers.popFirst() { due.append(entry) }
            for entry in due {
                if let body = timerBodies.removeValue(forKey: entry.id) { body() }
            }
        }
        var rounds = 0
        while drainOnce() && rounds < 10_000 { rounds += 1 }
        // From here on enqueues go to the fallback loop.
        var tail: [Work] = []
        inbox.withLock { state in
            state.stopped = true
            // Set under the lock: work forwarded from now on sees the loop as stopped.
            stoppedFlag.store(true, ordering: .releasing)
            swap(&state.items, &tail)
        }
        kv_set_thread_loop(nil)
        let me = kv_thread_tid()
        _ = EventLoop.pinnedThreads.withLock { $0.remove(me) }
        while let work = local.popFirst() { forwardToFallback(work) }
        for work in tail { forwardToFallback(work) }
        close(epollFD)
        close(wakeFD)
    }

    // MARK: Shutdown

    /// Asks the loop to stop once its queued work is done; returns at once.
    func requestStop() {
        let wake = inbox.withLock { state -> Bool in
            state.stopping = true
            return true
        }
        if wake { _ = kv_eventfd_signal(wakeFD) }
    }

    /// Waits for the loop thread to exit. Never call from a loop thread.
    func join() {
        precondition(EventLoop.current == nil || EventLoop.current === EventLoop.fallback,
                     "an event loop cannot wait for loops to stop")
        pthread_join(thread, nil)
    }

    /// Stops this loop and waits for its thread (for loops made outside a group).
    public func shutdown() {
        requestStop()
        join()
    }
}

extension Duration {
    /// The duration in whole nanoseconds (negative durations count as zero).
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}

/// Errors of the event loop layer.
public enum KVLoopError: Error, Sendable, Equatable {
    /// `epoll_ctl` refused the descriptor.
    case registrationFailed(fd: Int32, errno: Int32)
    /// The loop has stopped (its group shut down); it watches no more descriptors.
    case loopStopped
}
