import KVTestSupport
import KVRuntime
import Synchronization
import Testing
@testable import KVTransport

/// Echoes each arrival from the readiness event itself (`enqueue`), on the loop; declines
/// an arrival holding `0xFF`, which wakes the task.
private final class EchoConsumer: TCPInputConsumer, @unchecked Sendable {
    // Unchecked Sendable: used on the connection's loop only.
    var arrivals = 0
    var offLoopCalls = 0

    func consume(_ bytes: UnsafeRawBufferPointer, from connection: TCPConnection) -> Bool {
        arrivals += 1
        if !connection.loop.inEventLoop { offLoopCalls += 1 }
        try? connection.enqueue(Array(bytes))
        return !bytes.contains(0xFF)
    }
}

/// `read(handingTo:)`: input served in place, without waking the reading task.
@Suite struct TCPConsumingReadTests {
    /// Every arrival reaches the consumer on the loop; the task wakes only for the one the
    /// consumer declines, and for the end of the stream.
    @Test func theTaskWakesOnlyForADeclinedArrival() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let seen = Locked<(wakeups: Int, arrivals: Int, offLoop: Int, endSeen: Bool)>((0, 0, 0, false))
        let server = serve(listener) { connection in
            let consumer = EchoConsumer()
            while let n = try? await connection.read(handingTo: consumer) {
                if n == 0 {
                    seen.withLock { $0.endSeen = true }
                    break
                }
                seen.withLock { $0.wakeups += 1 }
                try? await connection.write([0xEE])
            }
            seen.withLock { $0.arrivals = consumer.arrivals; $0.offLoop = consumer.offLoopCalls }
        }
        try await withTimeout(20) {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            for i in 0..<60 {
                let byte = UInt8(i)
                try await connection.write([byte])
                #expect(try await connection.read(exactly: 1) == [byte])
                if i == 30 {
                    try await connection.write([0xFF])
                    #expect(try await connection.read(exactly: 2) == [0xFF, 0xEE])
                }
            }
            connection.close()
        }
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
        let result = seen.value
        #expect(result.wakeups == 1)
        #expect(result.arrivals == 61)
        #expect(result.offLoop == 0)
        #expect(result.endSeen)
    }

    /// A consuming read waits across many arrivals; each one moves its idle deadline, so a
    /// connection busy for longer than the idle timeout stays open, then idles out.
    @Test func eachArrivalMovesTheIdleDeadline() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let serverSaw = Locked<TransportError?>(nil)
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(idleTimeout: .seconds(2)))
        let server = serve(listener) { connection in
            do {
                while try await connection.read(handingTo: EchoConsumer()) > 0 {}
            } catch {
                serverSaw.withLock { $0 = error as? TransportError }
            }
        }
        let echoed = try await withTimeout(30) {
            try await echoForOneAndAHalfIdleTimeoutsThenIdle(port: listener.localPort, on: group.loops[0])
        }
        #expect(echoed == 40)
        #expect(await eventually { serverSaw.value == .timedOut(operation: "read") })
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    /// Closing the connection (as shutdown does with idle ones) ends a consuming read.
    @Test func closeEndsAWaitingConsumingRead() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let outcome = Locked<TransportError?>(nil)
        let server = serve(listener) { connection in
            do {
                _ = try await connection.read(handingTo: EchoConsumer())
            } catch {
                outcome.withLock { $0 = error as? TransportError }
            }
        }
        let client = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
        defer { client.close() }
        #expect(await eventually { listener.connectionCount == 1 })
        listener.shutdown(gracePeriod: .milliseconds(100))
        try await withTimeout { await server.value }
        #expect(outcome.value == .closed)
    }
}
