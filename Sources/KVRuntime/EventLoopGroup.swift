import Atomics
import CKVSystem

/// The process's event loops: one per core by default, placed node by node on the NUMA
/// topology and (by setting) pinned. Several in-process nodes share one group; servers and
/// clients take loops with `next()` (round-robin) or by index.
///
/// Creating a group starts its threads (≈ 50 µs each); `shutdown()` stops them.
public final class EventLoopGroup: Sendable {
    /// The loops, in placement order (node by node).
    public let loops: [EventLoop]
    /// The topology the loops were placed on.
    public let topology: CPUTopology
    /// Which core and node each loop was given.
    public let placement: LoopPlacement
    public let settings: RuntimeSettings
    private let cursor = ManagedAtomic<Int>(0)
    private let stopped = ManagedAtomic<Bool>(false)

    /// Starts `settings.loopCount` loops (default: `RuntimeSettings.defaultLoopCount(cpuCount:)`
    /// of `topology`, one per CPU beyond 2 CPUs).
    public init(settings: RuntimeSettings = RuntimeSettings(), topology: CPUTopology = .detect()) {
        self.settings = settings
        self.topology = topology
        let count = max(1, settings.loopCount ?? RuntimeSettings.defaultLoopCount(cpuCount: topology.cpuCount))
        placement = LoopPlacement.plan(loopCount: count, topology: topology)
        loops = placement.slots.map { EventLoop(index: $0.loop, slot: $0, settings: settings) }
        kv_ignore_sigpipe()
        if settings.pinThreads, let interval = settings.affinityRepairInterval {
            Self.repairAffinity()
            scheduleAffinityRepair(every: interval)
        }
    }

    /// Widens threads that inherited a pinned loop's single-core affinity; returns how many.
    @discardableResult
    public static func repairAffinity() -> Int {
        // The lock is held for the whole scan: a loop thread registers (under this lock)
        // before it pins itself, so it is either in `keep` or not pinned yet when scanned.
        EventLoop.pinnedThreads.withLock { threads in
            let keep = Array(threads)
            return Int(keep.withUnsafeBufferPointer { kv_widen_inherited_pinning($0.baseAddress, Int32($0.count)) })
        }
    }

    private func scheduleAffinityRepair(every interval: Duration) {
        loops[0].schedule(after: interval) { [weak self] in
            guard let self, !self.stopped.load(ordering: .acquiring) else { return }
            Self.repairAffinity()
            self.scheduleAffinityRepair(every: interval)
        }
    }

    /// The process-wide group (default settings), started on first use and never shut down.
    public static let shared = EventLoopGroup()

    /// The next loop, round-robin. Lock-free.
    public func next() -> EventLoop {
        let i = cursor.loadThenWrappingIncrement(ordering: .relaxed)
        return loops[Int(UInt(bitPattern: i) % UInt(loops.count))]
    }

    /// The loops placed on NUMA node `node`.
    public func loops(onNode node: Int) -> [EventLoop] {
        loops.filter { $0.slot?.node == node }
    }

    /// Stops every loop once its queued work is done and waits for their threads. Pending
    /// timers fire early and registered sockets are told the loop is closing. Call it from
    /// outside the loops; later calls do nothing.
    public func shutdown() {
        guard stopped.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        for loop in loops { loop.requestStop() }
        for loop in loops { loop.join() }
    }
}
