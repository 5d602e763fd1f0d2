import KVCore

/// A bloom filter over the keys of one SSTable, answering "may this table hold
/// this key?" with no false negatives and ≈ 1 % false positives at 10 bits/key.
///
/// The key's token (XXH64 of the key, already computed for every lookup) is the
/// hash: probe `i` sets bit `(h1 + i·h2) mod m` (Kirsch–Mitzenmacher double hashing),
/// with `h1` the token and `h2` a remix of it. A lookup costs `k` bit tests (k ≈ 7),
/// no allocation. Pure value; serialised as `k u8` followed by the bit array.
public struct BloomFilter: Sendable, Equatable {
    /// The bit array, bit `b` at `bits[b >> 3] & (1 << (b & 7))`.
    public let bits: [UInt8]
    /// Number of probes per key.
    public let hashCount: Int

    /// A filter sized `bitsPerKey` × `tokens.count` (at least 64 bits) holding every token.
    /// `bitsPerKey` ≤ 0 builds an empty filter that answers "maybe" to everything.
    public init(tokens: [Token], bitsPerKey: Int) {
        guard bitsPerKey > 0 else {
            bits = []
            hashCount = 0
            return
        }
        let bitCount = max(64, tokens.count * bitsPerKey)
        let k = min(30, max(1, Int((Double(bitsPerKey) * 0.69).rounded())))
        var array = [UInt8](repeating: 0, count: (bitCount + 7) / 8)
        let m = UInt64(array.count * 8)
        for token in tokens {
            var (h, step) = Self.probes(token)
            for _ in 0..<k {
                let bit = Int(h % m)
                array[bit >> 3] |= 1 << UInt8(bit & 7)
                h = h &+ step
            }
        }
        bits = array
        hashCount = k
    }

    /// A filter read back from disk. `hashCount` must be 0 (no filter) or 1…30.
    public init(bits: [UInt8], hashCount: Int) {
        self.bits = bits
        self.hashCount = hashCount
    }

    /// False only when the key with this token was certainly not added.
    public func mayContain(_ token: Token) -> Bool {
        guard hashCount > 0, !bits.isEmpty else { return true }
        let m = UInt64(bits.count * 8)
        var (h, step) = Self.probes(token)
        return bits.withUnsafeBufferPointer { array in
            for _ in 0..<hashCount {
                let bit = Int(h % m)
                if array[bit >> 3] & (1 << UInt8(bit & 7)) == 0 { return false }
                h = h &+ step
            }
            return true
        }
    }

    /// The serialised form: `k u8`, then the bit array.
    public var serialized: [UInt8] { [UInt8(hashCount)] + bits }

    private static func probes(_ token: Token) -> (UInt64, UInt64) {
        let h = token.rawValue
        // The step mixes the high bits into the low ones so tokens from one narrow
        // ring range (same high bits) still probe independently; odd so it cycles.
        let step = ((h ^ (h >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> 17 | 1
        return (h, step)
    }
}
