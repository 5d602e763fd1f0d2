/// Exponential backoff between reconnect attempts: `initial`, then doubling per consecutive
/// failure up to `maximum`. A pure value; the caller supplies the time.
public struct ReconnectBackoff: Sendable, Equatable {
    public let initial: Duration
    public let maximum: Duration
    /// Consecutive failed attempts since the last success.
    public private(set) var failures = 0

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    /// The wait after `failures` consecutive failures (zero before the first).
    public func delay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        var delay = initial
        for _ in 1..<min(failures, 64) {
            delay = delay * 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }

    /// Records a failed attempt; returns how long to wait before the next one.
    public mutating func recordFailure() -> Duration {
        failures += 1
        return delay(afterFailures: failures)
    }

    /// Records a success: the next failure waits `initial` again.
    public mutating func reset() { failures = 0 }
}
