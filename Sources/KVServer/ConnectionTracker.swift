import KVTransport
import Synchronization

/// The open client connections of a server, so shutdown can close the idle ones
/// at once and let busy ones finish the request in hand.
///
/// Handlers mark themselves busy from receiving the first byte of a request until
/// its reply is written. `drain()` closes every connection that is not busy; a busy one sees
/// `isDraining` when it finishes and closes itself. Cost: one lock on connect
/// and disconnect, two relaxed-order atomic stores per request batch.
final class ConnectionTracker: Sendable {
    /// One tracked connection.
    final class Slot: Sendable {
        let connection: TCPConnection
        let busy = Atomic<Bool>(false)
        init(connection: TCPConnection) { self.connection = connection }
    }

    private let slots = Mutex<[ObjectIdentifier: Slot]>([:])
    private let draining = Atomic<Bool>(false)

    var isDraining: Bool { draining.load(ordering: .sequentiallyConsistent) }

    /// Registers `connection`; nil when the server is already draining (close it).
    func register(_ connection: TCPConnection) -> Slot? {
        let slot = Slot(connection: connection)
        slots.withLock { $0[ObjectIdentifier(slot)] = slot }
        if isDraining {
            remove(slot)
            return nil
        }
        return slot
    }

    /// Runs `body` for `connection` while it is registered and counted as a connected
    /// client; closes nothing itself. Returns at once when the server is draining.
    func serve(
        _ connection: TCPConnection, counters: ServerCounters, _ body: (Slot) async -> Void
    ) async {
        guard let slot = register(connection) else { return }
        counters.connectedClients.wrappingAdd(1, ordering: .relaxed)
        counters.connectionsReceived.wrappingAdd(1, ordering: .relaxed)
        defer {
            counters.connectedClients.wrappingSubtract(1, ordering: .relaxed)
            remove(slot)
        }
        await body(slot)
    }

    func remove(_ slot: Slot) {
        _ = slots.withLock { $0.removeValue(forKey: ObjectIdentifier(slot)) }
    }

    /// Marks the start of work on received bytes.
    func begin(_ slot: Slot) { slot.busy.store(true, ordering: .sequentiallyConsistent) }

    /// Marks the end of that work (no partial request is buffered); true when the
    /// connection should now close (draining).
    func end(_ slot: Slot) -> Bool {
        slot.busy.store(false, ordering: .sequentiallyConsistent)
        return isDraining
    }

    /// Begins shutdown: closes every idle connection (their pending reads end).
    func drain() {
        draining.store(true, ordering: .sequentiallyConsistent)
        let all = slots.withLock { Array($0.values) }
        for slot in all where !slot.busy.load(ordering: .sequentiallyConsistent) {
            slot.connection.close()
        }
    }

    var count: Int { slots.withLock { $0.count } }

    /// Connections with received bytes not yet answered.
    var busyCount: Int {
        slots.withLock { $0.values.count { $0.busy.load(ordering: .sequentiallyConsistent) } }
    }
}
