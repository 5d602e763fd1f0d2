import KVCore

/// db_bench's key for integer `v`: the 8 bytes of `v`, most significant first,
/// then '0' characters up to `size` bytes.
func benchmarkKey(_ v: UInt64, size: Int) -> Key {
    var bytes = [UInt8](repeating: UInt8(ascii: "0"), count: size)
    for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: v >> (UInt64(7 - i) * 8)) }
    return Key(bytes)
}

/// Values cut from a 1 MiB pool of random bytes at random offsets, like db_bench's generator.
struct ValuePool: Sendable {
    let pool: [UInt8]
    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        pool = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }
    func value(size: Int, using rng: inout SplitMix64) -> Value {
        let start = Int(rng.next() % UInt64(pool.count - size))
        return Value(Array(pool[start..<(start + size)]))
    }
}

/// Latencies of one run, in nanoseconds.
struct Latencies {
    var samples: [UInt32] = []

    mutating func add(_ nanos: UInt64) { samples.append(UInt32(clamping: nanos)) }
    mutating func merge(_ other: Latencies) { samples += other.samples }

    /// The `p`-th percentile (0–100) in microseconds.
    func percentile(_ p: Double, sorted: [UInt32]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, Int((p / 100) * Double(sorted.count)))
        return Double(sorted[index]) / 1000
    }
}
