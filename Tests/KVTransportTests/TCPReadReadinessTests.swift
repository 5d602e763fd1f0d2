import KVTestSupport
import KVRuntime
import Testing
@testable import KVTransport

/// Reads that skip the `recv` after a short read, and the idle timer that stays armed across
/// reads instead of being re-armed for each one.
@Suite struct TCPReadReadinessTests {
    /// A short read lets the next read wait for the next edge; a FIN that came with (or right
    /// after) the data must still end the stream instead of leaving the reader waiting.
    @Test func finArrivingWithTheDataStillEndsTheStream() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let received = Locked<[[UInt8]]>([])
        let server = serve(listener) { connection in
            // The first read registers the socket; then data and FIN arrive while nobody
            // reads, so one edge reports both before the next read.
            var bytes = (try? await connection.read()) ?? []
            try? await Task.sleep(for: .milliseconds(30))
            while let chunk = try? await connection.read(), !chunk.isEmpty { bytes += chunk }
            received.withLock { $0.append(bytes) }
        }
        for round in 0..<10 {
            let message = [UInt8](repeating: UInt8(round), count: 5 + round)
            try await withTimeout {
                let connection = try await TCPConnection.connect(
                    host: "127.0.0.1", port: listener.localPort, on: group.loops[0])
                try await connection.write([0xFF])
                try await Task.sleep(for: .milliseconds(5))
                try await connection.write(message)
                connection.close()
            }
        }
        #expect(await eventually { received.value.count == 10 })
        #expect(Set(received.value) == Set((0..<10).map { [0xFF] + [UInt8](repeating: UInt8($0), count: 5 + $0) }))
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    /// Request/response traffic: every read is short, so every next read waits for an edge.
    @Test func pingPongAfterShortReadsNeverStalls() async throws {
        let group = makeGroup(loops: 2)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let server = serve(listener, echo)
        let rounds = try await withTimeout {
            let connection = try await TCPConnection.connect(
                host: "127.0.0.1", port: listener.localPort, on: group.loops[1])
            var done = 0
            for i in 0..<500 {
                try await connection.write([UInt8(truncatingIfNeeded: i), 7])
                let reply = try await connection.read(exactly: 2)
                if reply == [UInt8(truncatingIfNeeded: i), 7] { done += 1 }
            }
            connection.close()
            return done
        }
        #expect(rounds == 500)
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    /// The idle timer is armed once and re-arms itself while reads keep completing: a
    /// connection active for longer than the idle timeout stays open, then idles out.
    @Test func activeConnectionOutlivesTheIdleTimeoutThenIdlesOut() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let serverSaw = Locked<TransportError?>(nil)
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(idleTimeout: .seconds(2)))
        let server = serve(listener) { connection in
            do {
                while true {
                    let bytes = try await connection.read()
                    if bytes.isEmpty { return }
                    try await connection.write(bytes)
                }
            } catch {
                serverSaw.withLock { $0 = error as? TransportError }
            }
        }
        // 5 s of traffic and idling; a full parallel `swift test` on 2 cores (the crash
        // tests' kill loops) has stretched it past the default 10 s guard.
        let echoed = try await withTimeout(30) {
            try await echoForOneAndAHalfIdleTimeoutsThenIdle(port: listener.localPort, on: group.loops[0])
        }
        #expect(echoed == 40)
        #expect(await eventually { serverSaw.value == .timedOut(operation: "read") })
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }
}

/// The client side of the idle-timeout tests (2 s timeout): 40 one-byte echoes 75 ms apart
/// (1.5 idle timeouts of traffic, each gap far inside one; the timeout is long because a
/// loaded 2-core machine can stall a thread for a second), then it waits for the server
/// to close the idle connection. Returns how many echoes came back intact.
func echoForOneAndAHalfIdleTimeoutsThenIdle(port: Int, on loop: EventLoop) async throws -> Int {
    let clock = ContinuousClock()
    let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: loop)
    var echoed = 0
    for i in 0..<40 {
        try await Task.sleep(for: .milliseconds(75))
        try await connection.write([UInt8(i)])
        if try await connection.read(exactly: 1) == [UInt8(i)] { echoed += 1 }
    }
    let idleStart = clock.now
    let eof = try await connection.read()
    #expect(eof.isEmpty)
    // The server's idle wait began when it sent the last echo, a little before this
    // client saw it: a loaded machine has delayed that by > 50 ms, hence the margin.
    #expect(clock.now - idleStart >= .milliseconds(1500))
    return echoed
}
