import Foundation

/// The phi-accrual failure detector (Hayashibara et al., 2004), as Akka and
/// Cassandra use it: instead of a yes/no timeout it gives a suspicion level
/// `phi` that grows with the silence since the last heartbeat, scaled by how
/// regular that peer's heartbeats have been.
///
/// `phi = -log10(P(a heartbeat arrives later than now))`, with the inter-arrival
/// times modelled as a normal distribution (mean and standard deviation of the last
/// `maxSampleSize` intervals; the mean is widened by the acceptable pause and the
/// deviation floored by the minimum). Phi 8 means the chance that the peer is alive
/// and merely late is about 10^-8.
///
/// A value type with time passed in: `heartbeat(nowMillis:)` records an arrival,
/// `phi(nowMillis:)` reads the suspicion. Each costs O(1); memory is 8 bytes per sample.
public struct PhiAccrualFailureDetector: Sendable {
    /// Threshold, window size, deviation floor and acceptable pause.
    public let settings: FailureDetectorSettings
    /// Inter-arrival intervals in milliseconds, a ring buffer of at most `maxSampleSize`.
    private var intervals: [Double] = []
    private var nextSlot = 0
    private var sum: Double = 0
    private var sumOfSquares: Double = 0
    /// When the last heartbeat arrived; `nil` before the first.
    public private(set) var lastHeartbeatMillis: UInt64?

    public init(settings: FailureDetectorSettings = .init()) {
        precondition(settings.maxSampleSize >= 2, "the detector needs room for at least two samples")
        self.settings = settings
    }

    /// How many intervals are in the window.
    public var sampleCount: Int { intervals.count }

    /// The mean interval in the window, in milliseconds.
    public var meanMillis: Double { intervals.isEmpty ? settings.firstHeartbeatEstimateMillis : sum / Double(intervals.count) }

    /// The standard deviation of the window's intervals, in milliseconds (not floored).
    public var stdDeviationMillis: Double {
        guard !intervals.isEmpty else { return settings.firstHeartbeatEstimateMillis / 4 }
        let mean = meanMillis
        return max(0, sumOfSquares / Double(intervals.count) - mean * mean).squareRoot()
    }

    /// Records a heartbeat seen at `nowMillis`. The first heartbeat seeds the window
    /// with two samples around `firstHeartbeatEstimateMillis` (±¼ of it) so phi is
    /// meaningful at once. Intervals over `maxIntervalMillis` (an outage, not the
    /// rhythm) are not recorded; a clock that went backwards records nothing.
    public mutating func heartbeat(nowMillis: UInt64) {
        if let last = lastHeartbeatMillis {
            if nowMillis > last, nowMillis - last <= settings.maxIntervalMillis {
                record(Double(nowMillis - last))
            }
        } else if intervals.isEmpty {
            let estimate = settings.firstHeartbeatEstimateMillis
            record(estimate - estimate / 4)
            record(estimate + estimate / 4)
        }
        if nowMillis >= (lastHeartbeatMillis ?? 0) { lastHeartbeatMillis = nowMillis }
    }

    private mutating func record(_ interval: Double) {
        if intervals.count < settings.maxSampleSize {
            intervals.append(interval)
        } else {
            let old = intervals[nextSlot]
            sum -= old
            sumOfSquares -= old * old
            intervals[nextSlot] = interval
            nextSlot = (nextSlot + 1) % settings.maxSampleSize
        }
        sum += interval
        sumOfSquares += interval * interval
    }

    /// The suspicion level at `nowMillis`; 0 before the first heartbeat (a peer never
    /// heard from is not suspected, it is unknown).
    public func phi(nowMillis: UInt64) -> Double {
        guard let last = lastHeartbeatMillis, nowMillis > last else { return 0 }
        let elapsed = Double(nowMillis - last)
        let mean = meanMillis + settings.acceptableHeartbeatPauseMillis
        let deviation = max(stdDeviationMillis, settings.minStdDeviationMillis)
        return Self.phi(elapsed: elapsed, mean: mean, deviation: deviation)
    }

    /// `-log10` of the normal tail beyond `elapsed`, via the logistic approximation of
    /// the normal CDF that Akka uses (error < 10^-4), computed so neither branch
    /// loses precision to `1 - tiny`.
    static func phi(elapsed: Double, mean: Double, deviation: Double) -> Double {
        let y = (elapsed - mean) / deviation
        let e = exp(-y * (1.5976 + 0.070566 * y * y))
        if elapsed > mean {
            return -log10(e / (1 + e))
        }
        return -log10(1 - 1 / (1 + e))
    }

    /// True while `phi(nowMillis:)` is below `threshold` (default: the settings' 8).
    public func isAvailable(nowMillis: UInt64, threshold: Double? = nil) -> Bool {
        phi(nowMillis: nowMillis) < (threshold ?? settings.phiThreshold)
    }
}
