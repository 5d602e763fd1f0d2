/// Settings of the thread-per-core runtime: how many event loops, and how they sit on the CPUs.
///
/// Loaded from the `[runtime]` table of a node's configuration; every field has a default
/// that suits one node per host.
public struct RuntimeSettings: Sendable, Equatable {
    /// Number of event loops (threads). Default `nil`: `defaultLoopCount(cpuCount:)`, one per
    /// CPU the process may run on, or a single loop on a machine with at most 2 CPUs.
    public var loopCount: Int?
    /// Pin each loop thread to its own core (`pthread_setaffinity_np`). Default `true`.
    /// Where the process may not run on a planned core, the loop runs unpinned.
    public var pinThreads: Bool
    /// Ask libnuma (when present) to prefer the loop's NUMA node for the loop thread's
    /// allocations, beyond Linux's first-touch policy. Default `true`.
    public var preferLocalNUMANode: Bool
    /// How long an idle loop keeps polling for work before it sleeps in `epoll_wait`.
    /// A hop to a sleeping loop costs a futex wake (≈ 50–90 µs on a VM); a short spin
    /// turns that into a few µs at the price of CPU while idle. Default `.zero` (no spin).
    public var idleSpin: Duration
    /// Jobs a loop runs before it polls for I/O again, so sockets are not starved by a
    /// busy actor. Default 1024 jobs.
    public var jobsPerTick: Int
    /// Readiness events taken from one `epoll_wait`. Default 256 events (the maximum).
    public var eventsPerPoll: Int
    /// With pinning on, how often the group widens threads that inherited a loop's pinning
    /// (Linux threads inherit the affinity of the thread that creates them, so a Swift
    /// global-pool worker spawned from a loop thread would otherwise stay on that loop's
    /// core). `nil`: never. Default 1 s (one scan of `/proc/self/task`, ≈ 20 µs).
    public var affinityRepairInterval: Duration?

    /// The loop count used when `loopCount` is `nil`: one per CPU, except that a machine with
    /// at most 2 CPUs gets one loop. There a second loop has no core of its own: it competes
    /// with the kernel's network stack, the WAL syncer, the flusher and local clients, and
    /// every request for the other loop's shard pays a cross-thread hop (measured on 2 cores:
    /// one loop serves RESP GETs about 1.3× faster than two).
    public static func defaultLoopCount(cpuCount: Int) -> Int {
        cpuCount <= 2 ? 1 : cpuCount
    }

    public init(
        loopCount: Int? = nil,
        pinThreads: Bool = true,
        preferLocalNUMANode: Bool = true,
        idleSpin: Duration = .zero,
        jobsPerTick: Int = 1024,
        eventsPerPoll: Int = 256,
        affinityRepairInterval: Duration? = .seconds(1)
    ) {
        self.loopCount = loopCount
        self.pinThreads = pinThreads
        self.preferLocalNUMANode = preferLocalNUMANode
        self.idleSpin = idleSpin
        self.jobsPerTick = jobsPerTick
        self.eventsPerPoll = eventsPerPoll
        self.affinityRepairInterval = affinityRepairInterval
    }
}
