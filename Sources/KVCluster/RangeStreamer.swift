import KVCore
import KVStorage
import KVTransport

/// Sends this node's records of a token range to another node: what a decommissioning
/// node does for every range it gives up.
///
/// Every shard is scanned over the range (the range is one contiguous slice of each
/// engine's `(token, key)` order), and the newest version of each key — a value, a
/// tombstone or an expired value, with its original timestamp and expiry, never
/// re-stamped — goes out in `replicaWrite` batches of at most
/// `DecommissionSettings.streamBatchEntries` records and `streamBatchBytes` bytes, one
/// batch in flight at a time. The receiver applies them like any replica write (its
/// engine keeps the newer version when it already has one). A batch that fails is sent
/// again, up to `streamAttempts` times, one gossip interval apart.
///
/// Cost: one scan of the range per shard; one RPC per batch.
struct RangeStreamer: Sendable {
    let replica: LocalReplica
    let endpoint: any RPCEndpoint
    let settings: DecommissionSettings
    /// Per-batch RPC timeout.
    let timeout: Duration
    /// Pause between attempts of a failed batch.
    let retryDelay: Duration

    /// Streams `range` to `destination` at `address`; `sent` is told each batch's
    /// record and byte counts once acknowledged.
    func stream(
        _ range: TokenRange, to destination: NodeID, at address: NodeAddress,
        sent: (_ records: Int, _ bytes: Int) async -> Void
    ) async throws(DecommissionError) {
        var batch: [Entry] = []
        var batchBytes = 0
        for tokens in range.closedPieces {
            for shard in replica.shards {
                var cursor: ScanCursor?
                repeat {
                    let page: ScanPage
                    do throws(KVError) {
                        page = try await shard.engine.scan(tokens: tokens, after: cursor, limit: settings.streamBatchEntries)
                    } catch {
                        throw .streamFailed(range: range, destination: destination, reason: "local scan: \(error)")
                    }
                    for entry in page.entries {
                        batch.append(entry)
                        batchBytes += entry.key.bytes.count + entry.record.valueByteCount
                        if batch.count >= settings.streamBatchEntries || batchBytes >= settings.streamBatchBytes {
                            try await send(batch, range: range, to: destination, at: address)
                            await sent(batch.count, batchBytes)
                            batch.removeAll(keepingCapacity: true)
                            batchBytes = 0
                        }
                    }
                    cursor = page.resume
                } while cursor != nil
            }
        }
        if !batch.isEmpty {
            try await send(batch, range: range, to: destination, at: address)
            await sent(batch.count, batchBytes)
        }
    }

    private func send(
        _ batch: [Entry], range: TokenRange, to destination: NodeID, at address: NodeAddress
    ) async throws(DecommissionError) {
        let payload = ClusterCodec.encode(ReplicaWrite(entries: batch))
        var lastError = ""
        for attempt in 1...max(1, settings.streamAttempts) {
            if Task.isCancelled { throw .interrupted }
            do throws(TransportError) {
                _ = try await endpoint.call(
                    address.transport, method: ClusterMethod.replicaWrite.rawValue, payload: payload, timeout: timeout)
                return
            } catch {
                lastError = error.description
            }
            if attempt < settings.streamAttempts {
                do { try await Task.sleep(for: retryDelay) } catch { throw .interrupted }
            }
        }
        throw .streamFailed(range: range, destination: destination, reason: lastError)
    }
}
