import KVTestSupport
import Synchronization
import Testing
@testable import KVRuntime

/// Records the jobs of a turn and the end-of-turn call, in order.
final class TurnRecorder: LoopTurnHandler, Sendable {
    let log = Mutex<[String]>([])
    let done = Mutex<CheckedContinuation<[String], Never>?>(nil)

    func loopTurnEnded() {
        let entries = log.withLock { log in
            log.append("end")
            return log
        }
        done.withLock { $0.take() }?.resume(returning: entries)
    }
}

@Suite struct LoopTurnHandlerTests {
    @Test func endOfTurnRunsOnceAfterTheJobsQueuedInTheTurn() async throws {
        let group = testGroup(loops: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let recorder = TurnRecorder()
        let entries = try await withTimeout {
            await withCheckedContinuation { (continuation: CheckedContinuation<[String], Never>) in
                recorder.done.withLock { $0 = continuation }
                loop.execute {
                    recorder.log.withLock { $0.append("first") }
                    loop.atEndOfTurn(recorder)
                    // Queued from the loop thread: part of the same turn, so before the end.
                    loop.execute { recorder.log.withLock { $0.append("second") } }
                    loop.execute { recorder.log.withLock { $0.append("third") } }
                }
            }
        }
        #expect(entries == ["first", "second", "third", "end"])
    }
}
