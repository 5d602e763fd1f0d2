import KVCore
import KVStorage
import KVTransport
import Logging

/// Hands stored hints to their targets once gossip says they are up again: every
/// `HintSettings.deliveryIntervalMillis`, for each target that is up, batches of its
/// hints go out oldest first (`hintDelivery` RPC, one batch in flight per target, so
/// order is kept); a batch is deleted from the log only once the target acknowledged
/// it. Hints older than the window are dropped on the way (`HintPolicy`), and hints for
/// a node that has left the cluster are dropped whole (as Cassandra does on decommission):
/// the nodes that took its ranges over received its data by streaming and the writes
/// made meanwhile as pending replicas.
public actor HintDeliveryWorker {
    public let store: HintStore
    private let view: ClusterView
    private let endpoint: any RPCEndpoint
    private let clock: any WallClock
    private let timeout: Duration
    private let logger: Logger

    public init(
        store: HintStore, view: ClusterView, endpoint: any RPCEndpoint, clock: any WallClock, timeout: Duration,
        logger: Logger
    ) {
        self.store = store
        self.view = view
        self.endpoint = endpoint
        self.clock = clock
        self.timeout = timeout
        self.logger = logger
    }

    /// Delivers until the task is cancelled, one pass per `interval`.
    public nonisolated func run(interval: Duration) async {
        while !Task.isCancelled {
            _ = await deliverOnce()
            try? await Task.sleep(for: interval)
        }
    }

    /// One pass over the targets that are up; returns how many hints were delivered.
    public func deliverOnce() async -> Int {
        var delivered = 0
        let snapshot = view.snapshot
        for target in await store.queued.keys.sorted() where snapshot.states[target]?.status == .left {
            do throws(KVError) {
                let dropped = try await store.dropAll(for: target)
                logger.info("dropped \(dropped) hints for \(target), which has left the cluster")
            } catch {
                logger.warning("hint log: \(error)")
            }
        }
        for target in await store.queued.keys.sorted() where snapshot.isUp(target) && target != snapshot.local {
            guard let address = snapshot.address(of: target) else { continue }
            while !Task.isCancelled {
                let batch: [Hint]
                do throws(KVError) {
                    batch = try await store.nextBatch(for: target, nowMillis: clock.nowMillis())
                } catch {
                    logger.warning("hint log: \(error)")
                    break
                }
                if batch.isEmpty { break }
                let payload = ClusterCodec.encode(ReplicaWrite(entries: batch.map(\.entry)))
                do {
                    _ = try await endpoint.call(
                        address.transport, method: ClusterMethod.hintDelivery.rawValue, payload: payload, timeout: timeout)
                    try await store.delivered(batch)
                    delivered += batch.count
                } catch {
                    logger.info("hint delivery to \(target) paused: \(error)")
                    break
                }
            }
        }
        if delivered > 0 { logger.info("delivered \(delivered) hints") }
        return delivered
    }
}
