import KVTestSupport
import Foundation
import KVRuntime
import Testing
@testable import KVTransport

/// Prints request/response round trips per second over loopback (32 connections, one
/// 64-byte message in flight each, bounded to ~0.5 s). A figure to watch, not a gate: the
/// only assertion is that every reply was correct.
@Suite(.serialized) struct TCPThroughputTests {
    @Test func echoRoundTripsPerSecond() async throws {
        let group = makeGroup(loops: 2)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let server = serve(listener, echo)
        let port = listener.localPort
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(500)
        let start = clock.now
        let counts = try await withTimeout(20) {
            try await withThrowingTaskGroup(of: (Int, Bool).self) { clients in
                for _ in 0..<32 {
                    let loop = group.next()
                    clients.addTask(executorPreference: loop.taskExecutor) {
                        let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: loop)
                        defer { connection.close() }
                        let message = [UInt8](repeating: 0x5A, count: 64)
                        var trips = 0, ok = true
                        while clock.now < deadline && trips < 200_000 {
                            try await connection.write(message)
                            let reply = try await connection.read(exactly: 64)
                            ok = ok && reply == message
                            trips += 1
                        }
                        return (trips, ok)
                    }
                }
                return try await clients.reduce(into: [(Int, Bool)]()) { $0.append($1) }
            }
        }
        let elapsed = clock.now - start
        let trips = counts.reduce(0) { $0 + $1.0 }
        let allCorrect = counts.allSatisfy { $0.1 }
        #expect(allCorrect)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("TCP echo over loopback: \(trips) round trips in \(String(format: "%.2f", seconds)) s = \(Int(Double(trips) / seconds)) round trips/s (32 connections, 2 loops, clients on the same loops)")
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }
}
