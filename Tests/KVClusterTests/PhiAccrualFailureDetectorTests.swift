import KVCore
import Testing

@testable import KVCluster

@Suite struct PhiAccrualFailureDetectorTests {
    /// A detector fed `count` heartbeats `interval` ms apart from t = 0; returns it and the last arrival.
    static func regular(count: Int, interval: UInt64, settings: FailureDetectorSettings = .init())
        -> (PhiAccrualFailureDetector, UInt64)
    {
        var d = PhiAccrualFailureDetector(settings: settings)
        var t: UInt64 = 0
        for i in 0..<count {
            t = UInt64(i) * interval
            d.heartbeat(nowMillis: t)
        }
        return (d, t)
    }

    @Test func unknownPeerIsNotSuspected() {
        let d = PhiAccrualFailureDetector()
        #expect(d.phi(nowMillis: 1_000_000) == 0)
        #expect(d.isAvailable(nowMillis: 1_000_000))
    }

    @Test func regularHeartbeatsKeepPhiLow() {
        let (d, last) = Self.regular(count: 200, interval: 1000)
        #expect(abs(d.meanMillis - 1000) < 5)
        // Right after a beat, and one interval later, phi is essentially zero.
        #expect(d.phi(nowMillis: last) == 0)
        #expect(d.phi(nowMillis: last + 1000) < 0.1)
        // A beat that is late by less than the acceptable pause is tolerated.
        #expect(d.isAvailable(nowMillis: last + 3900))
    }

    @Test func phiRisesWithSilence() {
        let (d, last) = Self.regular(count: 200, interval: 1000)
        var previous = -1.0
        for silence in stride(from: UInt64(0), through: 8000, by: 250) {
            let phi = d.phi(nowMillis: last + silence)
            #expect(phi >= previous)
            previous = phi
        }
        // mean 1000 + pause 3000, deviation floored at 100: phi 8 is crossed near 4.6 s.
        #expect(d.phi(nowMillis: last + 4400) < 8)
        #expect(d.phi(nowMillis: last + 5000) > 8)
        #expect(!d.isAvailable(nowMillis: last + 5000))
        #expect(d.isAvailable(nowMillis: last + 5000, threshold: .infinity))
    }

    @Test func irregularHeartbeatsAreGivenMoreSlack() {
        var jittery = PhiAccrualFailureDetector()
        var rng = SeededRandom(seed: 3)
        var t: UInt64 = 0
        for _ in 0..<200 {
            t += 500 + rng.next() % 1001  // 500...1500 ms
            jittery.heartbeat(nowMillis: t)
        }
        let (steady, last) = Self.regular(count: 200, interval: 1000)
        #expect(jittery.stdDeviationMillis > 200)
        #expect(steady.stdDeviationMillis < 100)
        #expect(jittery.phi(nowMillis: t + 4500) < steady.phi(nowMillis: last + 4500))
    }

    @Test func windowIsBounded() {
        let settings = FailureDetectorSettings(maxSampleSize: 100)
        var (d, last) = Self.regular(count: 100, interval: 1000, settings: settings)
        #expect(d.sampleCount == 100)
        // Replace the whole window with 200 ms beats: the mean follows.
        for i in 1...100 { d.heartbeat(nowMillis: last + UInt64(i) * 200) }
        #expect(d.sampleCount == 100)
        #expect(abs(d.meanMillis - 200) < 1e-6)
        #expect(d.stdDeviationMillis < 1)
    }

    @Test func outagesAreNotLearnedAsTheRhythm() {
        var (d, last) = Self.regular(count: 50, interval: 1000)
        let mean = d.meanMillis
        d.heartbeat(nowMillis: last + 60_000)  // back after a minute away
        #expect(d.meanMillis == mean)
        #expect(d.lastHeartbeatMillis == last + 60_000)
        #expect(d.phi(nowMillis: last + 61_000) < 0.1)
        // A clock that steps backwards records nothing and does not move time back.
        d.heartbeat(nowMillis: last)
        #expect(d.lastHeartbeatMillis == last + 60_000)
    }

    @Test func firstHeartbeatSeedsAnEstimate() {
        var d = PhiAccrualFailureDetector()
        d.heartbeat(nowMillis: 10_000)
        #expect(d.sampleCount == 2)
        #expect(d.meanMillis == 1000)
        #expect(d.isAvailable(nowMillis: 13_000))
        #expect(!d.isAvailable(nowMillis: 20_000))
    }
}
