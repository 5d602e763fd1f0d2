/// The command-line flags, spelled as RocksDB's `db_bench` spells them.
struct BenchmarkFlags {
    /// Comma-separated: fillseq, fillrandom, overwrite, readrandom, readseq.
    var benchmarks = ["fillseq", "fillrandom", "overwrite", "readrandom"]
    /// Operations per thread, and the size of the key space. Default 1,000,000.
    var num = 1_000_000
    /// Reads per thread for the read benchmarks (-1 = `num`).
    var reads = -1
    /// Key size in bytes (an 8-byte big-endian integer, padded with '0'). Default 16.
    var keySize = 16
    /// Value size in bytes. Default 100.
    var valueSize = 100
    /// Concurrent client tasks. Default 1.
    var threads = 1
    /// 1: commit mode `sync` (every acknowledged write is on disk); 0: `periodic`.
    var sync = false
    /// Database directory.
    var db = "/tmp/engine-bench"
    /// Memtable size in bytes (db_bench's `--write_buffer_size`). Default 64 MiB.
    var writeBufferSize = 64 << 20
    /// Block cache bytes (db_bench's `--cache_size`). Default 8 MiB, db_bench's default.
    var cacheSize = 8 << 20
    /// 1: WAL segments are zero-filled ahead of use (`WALSettings.preallocate`). Default 1.
    var walZeroFill = true
    /// Random seed.
    var seed: UInt64 = 301

    static func parse(_ arguments: [String]) throws -> BenchmarkFlags {
        var flags = BenchmarkFlags()
        for argument in arguments {
            guard argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") else {
                throw FlagError.malformed(argument)
            }
            let name = String(argument[argument.index(argument.startIndex, offsetBy: 2)..<eq])
            let value = String(argument[argument.index(after: eq)...])
            func int() throws -> Int {
                guard let v = Int(value) else { throw FlagError.malformed(argument) }
                return v
            }
            switch name {
            case "benchmarks": flags.benchmarks = value.split(separator: ",").map(String.init)
            case "num": flags.num = try int()
            case "reads": flags.reads = try int()
            case "key_size": flags.keySize = try int()
            case "value_size": flags.valueSize = try int()
            case "threads": flags.threads = max(1, try int())
            case "sync": flags.sync = try int() != 0
            case "db": flags.db = value
            case "write_buffer_size": flags.writeBufferSize = try int()
            case "cache_size": flags.cacheSize = try int()
            case "seed": flags.seed = UInt64(try int())
            case "wal_zero_fill": flags.walZeroFill = try int() != 0
            default: throw FlagError.unknown(name)
            }
        }
        guard flags.keySize >= 8 else { throw FlagError.malformed("--key_size must be at least 8") }
        return flags
    }
}

enum FlagError: Error, CustomStringConvertible {
    case malformed(String)
    case unknown(String)

    var description: String {
        switch self {
        case .malformed(let a): return "malformed flag \(a) (expected --name=value)"
        case .unknown(let n): return "unknown flag --\(n)"
        }
    }
}
