import KVCore

/// A bloom filter over the keys of one SSTable, answering "may this table hold
/// this key?" with no false negatives and ≈ 1 % false positives at 10 bits/key.
///
/// The key's token (XXH64 of the key, already computed for every lookup) is the
/// hash. Two layouts, told apart by the serialised header:
///
/// - **Blocked** (what the writer builds): the bits form 512-bit lines; a remix of the
///   token picks one line, and all `k` probes fall inside it, at `(h1 + i·h2) mod 512`.
///   A lookup touches one cache line instead of `k` lines spread over the whole array
///   (on a filter larger than the CPU caches, `k` misses), and needs no division. It
///   costs a few more false positives at the same size: 1.1 % against 0.8 % at
///   10 bits/key (`bloomFilterFalsePositiveRateIsUnderTwoPercent`).
/// - **Standard** (tables written before the blocked layout; still read): probe `i`
///   tests bit `(h1 + i·h2) mod m` over the whole array (Kirsch–Mitzenmacher double
///   hashing).
///
/// Pure value; no allocation per lookup.
public struct BloomFilter: Sendable, Equatable {
    /// How the probes are spread over the bits.
    public enum Layout: Sendable, Equatable {
        /// All probes of a key inside one 512-bit line.
        case blocked
        /// Probes over the whole bit array.
        case standard
    }

    /// Bits in one line of the blocked layout (a 64-byte cache line).
    public static let lineBits = 512

    /// The bit array, bit `b` at `bits[b >> 3] & (1 << (b & 7))`.
    public let bits: [UInt8]
    /// Number of probes per key (0: no filter, every lookup answers "maybe").
    public let hashCount: Int
    /// How the probes are spread.
    public let layout: Layout

    /// A filter sized `bitsPerKey` × `tokens.count` (at least 64 bits; the blocked layout
    /// rounds up to whole lines) holding every token. `bitsPerKey` ≤ 0 builds an empty
    /// filter that answers "maybe" to everything. New tables use `.blocked`; `.standard`
    /// builds what tables written before it hold.
    public init(tokens: [Token], bitsPerKey: Int, layout: Layout = .blocked) {
        self.layout = layout
        guard bitsPerKey > 0 else {
            bits = []
            hashCount = 0
            return
        }
        let k = min(30, max(1, Int((Double(bitsPerKey) * 0.69).rounded())))
        let wanted = max(64, tokens.count * bitsPerKey)
        let byteCount = layout == .blocked
            ? (wanted + Self.lineBits - 1) / Self.lineBits * (Self.lineBits / 8) : (wanted + 7) / 8
        var array = [UInt8](repeating: 0, count: byteCount)
        array.withUnsafeMutableBufferPointer { array in
            for token in tokens {
                _ = Self.forEachProbe(token, k: k, layout: layout, byteCount: array.count) { byte, mask in
                    array[byte] |= mask
                    return true
                }
            }
        }
        bits = array
        hashCount = k
    }

    /// A filter read back from disk. `hashCount` must be 0 (no filter) or 1…30; a
    /// blocked filter's bit array must hold whole lines.
    public init(bits: [UInt8], hashCount: Int, layout: Layout) {
        self.bits = bits
        self.hashCount = hashCount
        self.layout = layout
    }

    /// Parses the serialised form; nil when the header or the size is invalid.
    public init?(serialized bytes: [UInt8]) {
        guard let header = bytes.first else { return nil }
        let k = Int(header & 0x7F)
        let layout: Layout = header & 0x80 != 0 ? .blocked : .standard
        let bits = Array(bytes.dropFirst())
        guard k <= 30, layout == .standard || bits.count % (Self.lineBits / 8) == 0 else { return nil }
        self.init(bits: bits, hashCount: k, layout: layout)
    }

    /// False only when the key with this token was certainly not added.
    public func mayContain(_ token: Token) -> Bool {
        guard hashCount > 0, !bits.isEmpty else { return true }
        return bits.withUnsafeBufferPointer { array in
            Self.forEachProbe(token, k: hashCount, layout: layout, byteCount: array.count) { byte, mask in
                array[byte] & mask != 0
            }
        }
    }

    /// Calls `probe` with the byte and bit mask of each of the `k` probes of `token`,
    /// stopping early when it returns false; returns whether every call returned true.
    @inline(__always)
    private static func forEachProbe(
        _ token: Token, k: Int, layout: Layout, byteCount: Int, _ probe: (Int, UInt8) -> Bool
    ) -> Bool {
        let h = token.rawValue
        // The step mixes the high bits into the low ones so tokens from one narrow
        // ring range (same high bits) still probe independently; odd so it cycles.
        let step = ((h ^ (h >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> 17 | 1
        var position = h
        switch layout {
        case .blocked:
            // The line comes from a remix of the whole token, not its high bits: a table of
            // one vnode range holds tokens that share their high bits.
            let mixed = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
            let lineBytes = lineBits / 8
            let line = Int(((mixed >> 32) &* UInt64(byteCount / lineBytes)) >> 32) * lineBytes
            for _ in 0..<k {
                let bit = Int(position & UInt64(lineBits - 1))
                if !probe(line + (bit >> 3), 1 << UInt8(bit & 7)) { return false }
                position = position &+ step
            }
        case .standard:
            let m = UInt64(byteCount * 8)
            for _ in 0..<k {
                let bit = Int(position % m)
                if !probe(bit >> 3, 1 << UInt8(bit & 7)) { return false }
                position = position &+ step
            }
        }
        return true
    }

    /// The serialised form: a header byte (`k`, plus 0x80 for the blocked layout), then
    /// the bit array.
    public var serialized: [UInt8] { [UInt8(hashCount) | (layout == .blocked ? 0x80 : 0)] + bits }
}
