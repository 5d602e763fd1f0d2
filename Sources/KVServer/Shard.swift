import KVCore
import KVRuntime
import KVStorage

/// One storage shard: an LSM engine whose actor runs on one event loop's
/// executor, so requests handled on that loop reach it without a thread hop.
/// Its files live in `<data-dir>/shard-<index>`.
public struct Shard: Sendable {
    /// Position in the node's shard list (and the directory suffix).
    public let index: Int
    /// The loop whose thread runs the engine's jobs.
    public let loop: EventLoop
    /// The shard's LSM engine; its actor runs on `loop`.
    public let engine: StorageEngine

    public init(index: Int, loop: EventLoop, engine: StorageEngine) {
        self.index = index
        self.loop = loop
        self.engine = engine
    }

    /// The shard directory for `index` under `dataDirectory`.
    public static func directory(index: Int, under dataDirectory: String) -> String {
        dataDirectory + "/shard-\(index)"
    }

    /// Which of `count` shards owns `token`: the ring is cut into `count` equal,
    /// contiguous token ranges (shard i owns [i·2⁶⁴/count, (i+1)·2⁶⁴/count)).
    /// The count of shards is fixed for a data directory: reopening with another
    /// count would look keys up in the wrong shard, so `SingleNode` refuses it.
    @inlinable public static func index(of token: Token, count: Int) -> Int {
        Int(truncatingIfNeeded: token.rawValue.multipliedFullWidth(by: UInt64(count)).high)
    }
}
