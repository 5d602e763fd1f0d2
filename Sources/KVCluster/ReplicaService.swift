import KVCore
import KVStorage
import KVTransport
import Synchronization

/// Why a replica refused a request from another node (sent back as the failure
/// frame's text, which starts with the case's words).
public enum ReplicaRejection: Error, Sendable, CustomStringConvertible {
    /// The payload could not be decoded.
    case malformed(ClusterCodecError)
    /// The write's timestamp is too far ahead of this replica's clock.
    case clockSkew(KVError)
    /// The storage engine refused the write or read.
    case storage(KVError)
    /// The method number is not one this node knows.
    case unknownMethod(UInt16)

    public var description: String {
        switch self {
        case let .malformed(e): "malformed request: \(e)"
        case let .clockSkew(e): "clock skew: \(e)"
        case let .storage(e): "storage: \(e)"
        case let .unknownMethod(m): "unknown method \(m)"
        }
    }
}

/// The replica side of a node: answers the RPCs other nodes' coordinators, gossipers
/// and hint workers send (`ClusterMethod`). Writes merge their timestamp into the
/// node's clock first (and are refused when it is too far ahead); hinted writes go to
/// the hint log for their target; reads come from the local shards.
final class ReplicaService: Sendable {
    let local: NodeID
    let replica: LocalReplica
    let hints: HintStore
    let clock: NodeClock
    let view: ClusterView
    /// Set once the gossiper exists (it needs the endpoint this service answers on).
    let gossiper = Mutex<Gossiper?>(nil)

    init(local: NodeID, replica: LocalReplica, hints: HintStore, clock: NodeClock, view: ClusterView) {
        self.local = local
        self.replica = replica
        self.hints = hints
        self.clock = clock
        self.view = view
    }

    func handle(_ request: RPCRequest) async throws(ReplicaRejection) -> [UInt8] {
        guard let method = ClusterMethod(rawValue: request.method) else { throw .unknownMethod(request.method) }
        switch method {
        case .replicaWrite, .hintDelivery:
            let write: ReplicaWrite
            do { write = try ClusterCodec.decodeWrite(request.payload) } catch { throw .malformed(error) }
            if let target = write.hintFor {
                do throws(KVError) {
                    try await hints.store(
                        write.entries, for: target, downSinceMillis: view.snapshot.downSinceMillis[target],
                        nowMillis: clock.nowMillis())
                } catch {
                    throw .storage(error)
                }
                return []
            }
            if let newest = write.entries.map(\.record.timestamp).max() {
                do throws(KVError) { try clock.receive(newest) } catch { throw .clockSkew(error) }
            }
            do throws(KVError) { try await replica.apply(write.entries) } catch { throw .storage(error) }
            return []
        case .replicaRead:
            let key: Key
            do { key = try ClusterCodec.decodeRead(request.payload) } catch { throw .malformed(error) }
            do throws(KVError) {
                return ClusterCodec.encode(ReplicaReadReply(record: try await replica.get(key)))
            } catch {
                throw .storage(error)
            }
        case .gossip:
            if let gossiper = gossiper.withLock({ $0 }) { await gossiper.receive(payload: request.payload) }
            return []
        case .ping:
            return ClusterCodec.encode(PingReply(node: local, wallMillis: clock.nowMillis()))
        }
    }
}
