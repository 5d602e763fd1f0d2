import KVTestSupport
import CKVSystem
import Foundation
import Synchronization
import Testing
@testable import KVRuntime

/// An actor whose jobs run on a given loop's thread.
actor LoopBound {
    let loop: EventLoop
    var count = 0
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }

    init(loop: EventLoop) { self.loop = loop }

    func threadID() -> UInt64 { EventLoop.currentThreadID }
    func isOnLoop() -> Bool { loop.inEventLoop }
    func increment() -> Int {
        count += 1
        return count
    }

    var replies = 0

    /// Calls `peer` `rounds` times, awaiting each reply (a round trip per call). Recording
    /// each reply in this actor's state forces the hop back (an optimized build drops a hop
    /// that nothing needs).
    func ping(_ peer: LoopBound, rounds: Int) async -> Int {
        var last = 0
        for _ in 0..<rounds {
            last = await peer.increment()
            replies += 1
        }
        return last
    }
}

func testGroup(loops: Int = 2, spin: Duration = .zero) -> EventLoopGroup {
    EventLoopGroup(settings: RuntimeSettings(loopCount: loops, pinThreads: false, idleSpin: spin))
}

@Suite struct EventLoopTests {
    @Test func actorOnALoopRunsOnThatLoopsThread() async throws {
        let group = testGroup()
        defer { group.shutdown() }
        for loop in group.loops {
            let loopThread = try await withTimeout { await loop.submit { EventLoop.currentThreadID } }
            let actor = LoopBound(loop: loop)
            let actorThread = try await withTimeout { await actor.threadID() }
            #expect(actorThread == loopThread)
            #expect(try await withTimeout { await actor.isOnLoop() })
        }
        #expect(group.loops[0] !== group.loops[1])
    }

    @Test func taskPreferenceRunsOnTheLoopThread() async throws {
        let group = testGroup()
        defer { group.shutdown() }
        let loop = group.loops[1]
        let loopThread = try await withTimeout { await loop.submit { EventLoop.currentThreadID } }
        let observed = try await withTimeout {
            await Task(executorPreference: loop.taskExecutor) { () -> [UInt64] in
                var seen = [EventLoop.currentThreadID]
                await Task.yield()
                seen.append(EventLoop.currentThreadID)
                let actor = LoopBound(loop: loop)
                _ = await actor.increment()
                seen.append(EventLoop.currentThreadID)
                return seen
            }.value
        }
        #expect(observed == [loopThread, loopThread, loopThread])
        let fromGroup = try await withTimeout {
            await withTaskGroup(of: Bool.self) { tasks in
                for _ in 0..<8 { tasks.addTask(executorPreference: loop.taskExecutor) { loop.inEventLoop } }
                return await tasks.reduce(true) { $0 && $1 }
            }
        }
        #expect(fromGroup)
    }

    @Test func timersFireAfterTheirDelayInOrderAndCanBeCancelled() async throws {
        let group = testGroup(loops: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let fired = Locked<[Int]>([])
        let clock = ContinuousClock()
        let start = clock.now
        let done = try await withTimeout {
            await withCheckedContinuation { (c: CheckedContinuation<Duration, Never>) in
                loop.schedule(after: .milliseconds(30)) { fired.withLock { $0.append(30) } }
                loop.schedule(after: .milliseconds(10)) { fired.withLock { $0.append(10) } }
                let cancelled = loop.schedule(after: .milliseconds(20)) { fired.withLock { $0.append(20) } }
                cancelled.cancel()
                loop.schedule(after: .milliseconds(40)) { c.resume(returning: clock.now - start) }
            }
        }
        #expect(fired.withLock { $0 } == [10, 30])
        #expect(done >= .milliseconds(40))
        let slept = try await withTimeout { () -> Duration in
            let t0 = clock.now
            await loop.sleep(for: .milliseconds(15))
            return clock.now - t0
        }
        #expect(slept >= .milliseconds(15))
    }

    @Test func crossLoopMessagesArriveInOrderFromManyThreads() async throws {
        let group = testGroup()
        defer { group.shutdown() }
        let target = group.loops[1]
        let received = Locked<[Int: [Int]]>([:])
        try await withTimeout {
            await withTaskGroup(of: Void.self) { producers in
                for producer in 0..<4 {
                    producers.addTask {
                        for i in 0..<2_000 {
                            target.execute { received.withLock { $0[producer, default: []].append(i) } }
                        }
                    }
                }
            }
            await target.submit {}
        }
        let byProducer = received.withLock { $0 }
        #expect(byProducer.count == 4)
        for (_, values) in byProducer { #expect(values == Array(0..<2_000)) }
    }

    @Test func pendingTimersFireAtShutdownAndLateJobsStillRun() async throws {
        let group = testGroup(loops: 1)
        let loop = group.loops[0]
        let fired = Locked(false)
        loop.schedule(after: .seconds(3600)) { fired.withLock { $0 = true } }
        _ = try await withTimeout { await loop.submit { 1 } }
        group.shutdown()
        #expect(fired.withLock { $0 })
        // The loop is gone: work for it runs on the fallback loop instead of being lost.
        let late = try await withTimeout { await loop.submit { 42 } }
        #expect(late == 42)
        let actor = LoopBound(loop: loop)
        #expect(try await withTimeout { await actor.increment() } == 1)
    }

    @Test func groupHandsOutLoopsRoundRobin() {
        let group = testGroup(loops: 3)
        defer { group.shutdown() }
        let picked = (0..<6).map { _ in group.next().index }
        #expect(picked == [0, 1, 2, 0, 1, 2])
        #expect(group.loops(onNode: group.placement.slots[0].node).count == 3)
    }

    @Test func pinnedLoopsRunOnTheirCore() async throws {
        let topology = CPUTopology.detect()
        let group = EventLoopGroup(settings: RuntimeSettings(loopCount: topology.cpuCount, pinThreads: true))
        defer { group.shutdown() }
        for loop in group.loops {
            let cpu = try await withTimeout { await loop.submit { EventLoop.currentCPU } }
            #expect(loop.pinnedCPU == loop.slot?.cpu)
            #expect(cpu == loop.slot?.cpu)
        }
    }
}

/// Serialized so the two spin settings do not compete for the machine's cores.
@Suite(.serialized) struct CrossLoopHopTests {
    /// Measures a cross-loop hop: an actor on loop A awaiting an actor on loop B (a round
    /// trip), and a closure posted A → B. Prints the figures; asserts only that work arrived.
    @Test(arguments: [Duration.zero, .microseconds(50)])
    func crossLoopHopCost(spin: Duration) async throws {
        let group = testGroup(loops: 2, spin: spin)
        defer { group.shutdown() }
        let a = LoopBound(loop: group.loops[0]), b = LoopBound(loop: group.loops[1]), a2 = LoopBound(loop: group.loops[0])
        let rounds = 2_000
        let clock = ContinuousClock()
        _ = try await withTimeout { await a.ping(b, rounds: 100) }
        let t0 = clock.now
        let last = try await withTimeout { await a.ping(b, rounds: rounds) }
        let crossRoundTrip = (clock.now - t0) / rounds
        let t1 = clock.now
        _ = try await withTimeout { await a.ping(a2, rounds: rounds) }
        let sameLoop = (clock.now - t1) / rounds
        // One-way posts A → B, batched: the time per message when many are in flight.
        let posts = 20_000
        let counter = Locked(0)
        let t2 = clock.now
        try await withTimeout {
            await group.loops[0].submit {
                for _ in 0..<posts { group.loops[1].execute { counter.withLock { $0 += 1 } } }
            }
            await group.loops[1].submit {}
        }
        let perPost = (clock.now - t2) / posts
        #expect(last == 100 + rounds)
        #expect(counter.withLock { $0 } == posts)
        print("cross-loop hop (idle spin \(micros(spin)) µs): actor round trip A→B→A \(micros(crossRoundTrip)) µs, same-loop actor call \(micros(sameLoop)) µs, batched post A→B \(micros(perPost)) µs/message")
    }
}

/// A duration in microseconds with two decimals, for printed figures.
func micros(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let value = Double(seconds) * 1e6 + Double(attoseconds) / 1e12
    return String(format: "%.2f", value)
}

@Suite struct AffinityRepairTests {
    @Test(.enabled(if: CPUTopology.allowedCPUs().count >= 2))
    func threadsSpawnedByPinnedLoopsAreWidenedAgain() async throws {
        let group = EventLoopGroup(settings: RuntimeSettings(loopCount: 2, pinThreads: true, affinityRepairInterval: nil))
        defer { group.shutdown() }
        let spawned = Locked<Int32>(0)
        let release = DispatchSemaphore(value: 0)
        try await withTimeout {
            await group.loops[0].submit {
                // Created from the pinned loop thread: inherits its single-core affinity.
                Thread {
                    spawned.withLock { $0 = kv_thread_tid() }
                    release.wait()
                }.start()
            }
        }
        defer { release.signal() }
        #expect(await eventually { spawned.value != 0 })
        let tid = spawned.value
        // It inherited the loop's single core (unless a repair run by another test's group
        // already widened it); after a repair it may run anywhere again.
        let before = kv_thread_cpu_count(tid)
        #expect(before == 1 || before == Int32(CPUTopology.allowedCPUs().count))
        EventLoopGroup.repairAffinity()
        #expect(kv_thread_cpu_count(tid) == Int32(CPUTopology.allowedCPUs().count))
        for loop in group.loops {
            #expect(kv_thread_cpu_count(loop.threadTID) == 1, "a loop thread lost its pinning")
            #expect(loop.pinnedCPU == loop.slot?.cpu)
        }
    }

    @Test func placementDoesNotDependOnTheCallingThread() async throws {
        let first = EventLoopGroup(settings: RuntimeSettings(loopCount: 2, pinThreads: true))
        defer { first.shutdown() }
        // A group created from a pinned loop thread still sees every CPU of the process.
        let cpus = try await withTimeout { await first.loops[0].submit { CPUTopology.detect().cpuCount } }
        #expect(cpus == CPUTopology.allowedCPUs().count)
    }
}
