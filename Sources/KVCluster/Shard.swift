import KVCore
import KVRuntime
import KVStorage
import Logging

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
    /// count would look keys up in the wrong shard, so `openAll` refuses it.
    @inlinable public static func index(of token: Token, count: Int) -> Int {
        Int(truncatingIfNeeded: token.rawValue.multipliedFullWidth(by: UInt64(count)).high)
    }

    /// Opens (or creates) one engine per loop under `dataDirectory`, each opened from a
    /// task that prefers its loop (first-touch placement) and bound to the loop's
    /// executor. Throws `KVError.invalidArgument` when the directory was written with a
    /// different shard count. Cost: each engine's recovery (WAL replay).
    public static func openAll(
        dataDirectory: String, loops: [EventLoop], storage: StorageSettings, wallClock: any WallClock,
        logger: Logger
    ) async throws(KVError) -> [Shard] {
        precondition(!loops.isEmpty, "a node needs at least one event loop")
        try ShardLayout.check(dataDirectory: dataDirectory, shardCount: loops.count)
        var opened: [Shard] = []
        for (i, loop) in loops.enumerated() {
            do throws(KVError) {
                let engine = try await openEngine(
                    directory: directory(index: i, under: dataDirectory), settings: storage, clock: wallClock,
                    logger: logger, loop: loop)
                opened.append(Shard(index: i, loop: loop, engine: engine))
            } catch {
                for shard in opened { await shard.engine.close() }
                throw error
            }
        }
        return opened
    }

    /// Opens one engine from a task on `loop`, bound to the loop's executor.
    public static func openEngine(
        directory: String, settings: StorageSettings, clock: any WallClock, logger: Logger, loop: EventLoop
    ) async throws(KVError) -> StorageEngine {
        let executor = loop.actorExecutor!
        let result: Result<StorageEngine, KVError> = await withTaskExecutorPreference(loop.taskExecutor) {
            do throws(KVError) {
                return .success(
                    try await StorageEngine.open(
                        directory: directory, settings: settings, clock: clock, logger: logger, executor: executor))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
