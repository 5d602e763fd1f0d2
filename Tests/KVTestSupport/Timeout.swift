// Helpers shared by the test targets: bounded waits, so no test can hang.
import Synchronization

/// A test's bounded wait ran out.
public struct TimedOut: Error, CustomStringConvertible {
    public let seconds: Double
    public var description: String { "timed out after \(seconds) s" }
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `seconds`, so no test can hang.
/// The body runs as its own task: a body that ignores cancellation cannot hold the test past
/// its deadline (a task group would wait for it).
public func withTimeout<T: Sendable>(
    _ seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let work = Task { try await body() }
    let answer = FirstResult<T>()
    let result: Result<T, any Error> = await withCheckedContinuation { continuation in
        answer.install(continuation)
        Task { answer.resume(await work.result) }
        Task {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            answer.resume(.failure(TimedOut(seconds: seconds)))
        }
    }
    work.cancel()
    return try result.get()
}

/// Resumes a continuation with the first result offered; later ones are dropped.
final class FirstResult<T: Sendable>: Sendable {
    private let slot = Mutex<CheckedContinuation<Result<T, any Error>, Never>?>(nil)

    func install(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
        slot.withLock { $0 = continuation }
    }

    func resume(_ result: Result<T, any Error>) {
        let waiting = slot.withLock { current in
            defer { current = nil }
            return current
        }
        waiting?.resume(returning: result)
    }
}


/// A value shared between test closures, behind a lock.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    public var value: Value { mutex.withLock { $0 } }
}

/// Polls `condition` every 5 ms until it holds or `seconds` pass; returns whether it held.
public func eventually(_ seconds: Double = 5, _ condition: @Sendable () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1000))
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}
