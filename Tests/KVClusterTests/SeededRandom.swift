import KVCore

/// The simulations' generator: KVCore's SplitMix64, so every run repeats from its seed.
typealias SeededRandom = SplitMix64
