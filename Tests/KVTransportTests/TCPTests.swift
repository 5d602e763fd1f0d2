import KVTestSupport
import KVRuntime
import CKVSystem
import Glibc
import Synchronization
import Testing
@testable import KVTransport

/// Serves `listener` with `handler` in a child task; returns the task so tests can await its end.
func serve(
    _ listener: TCPListener, _ handler: @escaping @Sendable (TCPConnection) async -> Void
) -> Task<Void, Never> {
    Task { await listener.run(handler) }
}

/// Echoes every byte back until the peer closes.
@Sendable func echo(_ connection: TCPConnection) async {
    while let bytes = try? await connection.read(), !bytes.isEmpty {
        do { try await connection.write(bytes) } catch { return }
    }
}

func makeGroup(loops: Int = 2) -> EventLoopGroup {
    EventLoopGroup(settings: RuntimeSettings(loopCount: loops, pinThreads: false))
}

@Suite struct TCPTests {
    @Test func echoWithManyConcurrentConnections() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let server = serve(listener, echo)
        #expect(listener.localPort > 0)
        let port = listener.localPort
        let verified = try await withTimeout(20) {
            try await withThrowingTaskGroup(of: Int.self) { clients in
                for c in 0..<50 {
                    clients.addTask {
                        let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next())
                        defer { connection.close() }
                        var ok = 0
                        for m in 0..<20 {
                            let message = (0..<100).map { UInt8(truncatingIfNeeded: c &* 31 &+ m &+ $0) }
                            try await connection.write(message)
                            if try await connection.read(exactly: 100) == message { ok += 1 }
                        }
                        return ok
                    }
                }
                return try await clients.reduce(0, +)
            }
        }
        #expect(verified == 50 * 20)
        #expect(listener.acceptedTotal == 50)
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    @Test func handlersRunOnTheirConnectionsLoop() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "localhost", port: 0, group: group)
        let server = serve(listener) { connection in
            let onLoop: UInt8 = connection.loop.inEventLoop ? 1 : 0
            _ = try? await connection.read()
            let stillOnLoop: UInt8 = connection.loop.inEventLoop ? 1 : 0
            try? await connection.write([onLoop, stillOnLoop])
        }
        let reply = try await withTimeout {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            try await connection.write([7])
            return try await connection.read(exactly: 2)
        }
        #expect(reply == [1, 1])
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    /// `read(into:)` on the loop hands the received bytes straight from the receive buffer,
    /// across many partial reads, and reports 0 at end of stream.
    @Test func readIntoHandsOverEveryByteThenZeroAtEnd() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let total = 300_000
        let received = Mutex<(bytes: [UInt8], reads: Int, endSeen: Bool)>(([], 0, false))
        let server = serve(listener) { connection in
            var collected: [UInt8] = []
            var reads = 0
            while true {
                guard let n = try? await connection.read(maxBytes: 8192, into: { collected.append(contentsOf: $0) }) else { break }
                if n == 0 {
                    received.withLock { $0.endSeen = true }
                    break
                }
                reads += 1
                if collected.count == total { try? await connection.write([1]) }
            }
            received.withLock { $0.bytes = collected; $0.reads = reads }
        }
        let payload = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        try await withTimeout {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            try await connection.write(payload)
            #expect(try await connection.read(exactly: 1) == [1])
            connection.close()
        }
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
        let result = received.withLock { $0 }
        #expect(result.bytes == payload)
        #expect(result.reads >= total / 8192, "at most 8192 bytes per read")
        #expect(result.endSeen)
    }

    /// A request-reply handler writing with `write(recycling:)` gets its buffer back empty,
    /// holding the storage of an earlier reply once one has been sent, and every reply
    /// arrives intact and in order.
    @Test func recyclingWritesHandBackSentBuffers() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let recycled = Mutex(0)
        let server = serve(listener) { connection in
            var out: [UInt8] = []
            while let bytes = try? await connection.read(), !bytes.isEmpty {
                for b in bytes { out.append(contentsOf: repeatElement(b, count: 200)) }
                do { try await connection.write(recycling: &out) } catch { return }
                if out.isEmpty && out.capacity >= 200 { recycled.withLock { $0 += 1 } }
            }
        }
        let replies = try await withTimeout {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            defer { connection.close() }
            var good = 0
            for i in 0..<100 {
                try await connection.write([UInt8(i)])
                if try await connection.read(exactly: 200) == [UInt8](repeating: UInt8(i), count: 200) { good += 1 }
            }
            return good
        }
        #expect(replies == 100)
        // The first reply has no sent buffer to take over; later ones do.
        #expect(recycled.withLock { $0 } >= 90)
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    @Test func largePayloadsSurvivePartialReadsAndWrites() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(writeBufferLimitBytes: 128 * 1024))
        let server = serve(listener, echo)
        let payload = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let echoed = try await withTimeout(30) {
            let connection = try await TCPConnection.connect(
                host: "127.0.0.1", port: listener.localPort, on: group.next(),
                settings: TCPSettings(writeBufferLimitBytes: 128 * 1024))
            async let received = connection.read(exactly: payload.count)
            try await connection.write(payload)
            return try await received
        }
        #expect(echoed.count == payload.count)
        #expect(echoed == payload)
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    @Test func writerIsHeldBackWhileThePeerDoesNotRead() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let chunk = [UInt8](repeating: 0xAB, count: 64 * 1024)
        let chunks = 512  // 32 MiB: far more than socket buffers plus the 64 KiB write buffer
        let written = Locked(0)
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(writeBufferLimitBytes: 64 * 1024))
        let server = serve(listener) { connection in
            for _ in 0..<chunks {
                do { try await connection.write(chunk) } catch { return }
                written.withLock { $0 += 1 }
            }
        }
        let total = try await withTimeout(30) { () -> Int in
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            try await Task.sleep(for: .milliseconds(300))
            let heldBack = written.value
            #expect(heldBack < chunks / 2, "writer ran ahead of a peer that does not read: \(heldBack) chunks")
            var total = 0
            while true {
                let bytes = try await connection.read()
                if bytes.isEmpty { break }
                #expect(bytes.allSatisfy { $0 == 0xAB })
                total += bytes.count
            }
            return total
        }
        #expect(total == chunks * chunk.count)
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    @Test func peerResetMidWriteFailsTheWriter() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let outcome = Locked<TransportError?>(nil)
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let server = serve(listener) { connection in
            let chunk = [UInt8](repeating: 1, count: 256 * 1024)
            for _ in 0..<4096 {
                do { try await connection.write(chunk) } catch {
                    outcome.withLock { $0 = error as? TransportError }
                    return
                }
            }
        }
        try await withTimeout(20) {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            _ = try await connection.read(exactly: 100_000)
            connection.abort()
        }
        listener.shutdown(gracePeriod: .seconds(5))
        try await withTimeout(10) { await server.value }
        #expect(outcome.value == .connectionReset)
    }

    @Test func idleConnectionsAreClosed() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let serverSaw = Locked<TransportError?>(nil)
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(idleTimeout: .milliseconds(100)))
        let server = serve(listener) { connection in
            do { _ = try await connection.read() } catch { serverSaw.withLock { $0 = error as? TransportError } }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let eof = try await withTimeout {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            return try await connection.read()
        }
        #expect(eof.isEmpty)
        #expect(clock.now - start >= .milliseconds(90))
        #expect(await eventually { serverSaw.value == .timedOut(operation: "read") })
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
    }

    @Test func connectionLimitIsEnforced() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(maxConnections: 2))
        let server = serve(listener, echo)
        let port = listener.localPort
        try await withTimeout {
            let first = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next())
            let second = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next())
            for connection in [first, second] {
                try await connection.write([1, 2, 3])
                #expect(try await connection.read(exactly: 3) == [1, 2, 3])
            }
            // The third is accepted and reset at once: either connect or the first read sees it.
            do {
                let third = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next())
                let bytes = try await third.read()
                #expect(bytes.isEmpty)
            } catch {
                #expect(error as? TransportError == .connectionReset)
            }
            #expect(await eventually { listener.refusedTotal == 1 })
            #expect(listener.connectionCount == 2)
            first.close()
            second.close()
        }
        listener.shutdown(gracePeriod: .seconds(1))
        try await withTimeout { await server.value }
        #expect(listener.connectionCount == 0)
    }

    @Test func shutdownLetsInFlightRequestsFinishThenRefusesConnections() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let port = listener.localPort
        let server = serve(listener) { connection in
            guard let request = try? await connection.read(), !request.isEmpty else { return }
            await connection.loop.sleep(for: .milliseconds(100))
            try? await connection.write(request.reversed())
        }
        let idle = try await withTimeout { try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next()) }
        let busy = try await withTimeout { try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next()) }
        try await busy.write([1, 2, 3])
        try await Task.sleep(for: .milliseconds(20))
        listener.shutdown(gracePeriod: .milliseconds(500))
        let reply = try await withTimeout { try await busy.read(exactly: 3) }
        #expect(reply == [3, 2, 1])
        // The idle connection is reset when the grace period ends; `run` then returns.
        try await withTimeout(5) { await server.value }
        let idleEnd = try? await withTimeout { try await idle.read() }
        #expect(idleEnd == nil || idleEnd == [])
        await #expect(throws: TransportError.connectionRefused(host: "127.0.0.1", port: port)) {
            _ = try await withTimeout { try await TCPConnection.connect(host: "127.0.0.1", port: port, on: group.next()) }
        }
    }

    @Test func badAddressesAreRejected() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        #expect(throws: TransportError.invalidAddress("example.com")) {
            _ = try TCPListener.bind(host: "example.com", port: 0, group: group)
        }
        let taken = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        #expect(throws: TransportError.self) {
            _ = try TCPListener.bind(host: "127.0.0.1", port: taken.localPort, group: group)
        }
        taken.shutdown(gracePeriod: .zero)
    }
}

@Suite struct AcceptFailureTests {
    @Test func outOfDescriptorsPausesAcceptingInsteadOfSpinning() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        // The first 3 accept calls fail as if the descriptor table were full.
        let failuresLeft = Locked(3)
        let listener = try TCPListener.bind(
            host: "127.0.0.1", port: 0, group: group, settings: TCPSettings(acceptBackoff: .milliseconds(40)),
            logger: .init(label: "test")
        ) { fd in
            if failuresLeft.withLock({ left in
                defer { left = max(0, left - 1) }
                return left > 0
            }) {
                errno = EMFILE
                return -1
            }
            return kv_tcp_accept(fd)
        }
        let server = serve(listener, echo)
        let clock = ContinuousClock()
        let start = clock.now
        let reply = try await withTimeout {
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.next())
            try await connection.write([42])
            return try await connection.read(exactly: 1)
        }
        #expect(reply == [42])
        // Three pauses of 40 ms, and a handful of accept calls rather than thousands.
        #expect(clock.now - start >= .milliseconds(110))
        #expect(listener.acceptAttemptTotal < 10)
        listener.shutdown(gracePeriod: .milliseconds(100))
        try await withTimeout { await server.value }
    }
}

@Suite struct LoopShutdownTests {
    @Test func connectionsFailCleanlyAfterTheirLoopStops() async throws {
        let serverGroup = makeGroup(loops: 1)
        defer { serverGroup.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: serverGroup)
        let server = serve(listener, echo)
        let clientGroup = makeGroup(loops: 1)
        let waiting = try await withTimeout {
            try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: clientGroup.loops[0])
        }
        let idle = try await withTimeout {
            try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: clientGroup.loops[0])
        }
        let pendingRead = Task { try await waiting.read() }
        try await Task.sleep(for: .milliseconds(20))
        clientGroup.shutdown()
        // A read waiting when the loop stopped fails; later calls fail too, without crashing or hanging.
        await #expect(throws: TransportError.closed) { _ = try await withTimeout { try await pendingRead.value } }
        await #expect(throws: TransportError.closed) { _ = try await withTimeout { try await waiting.write([1]) } }
        await #expect(throws: TransportError.closed) { _ = try await withTimeout { try await idle.read() } }
        idle.close()
        await #expect(throws: TransportError.closed) {
            _ = try await withTimeout {
                try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: clientGroup.loops[0])
            }
        }
        listener.shutdown(gracePeriod: .milliseconds(100))
        try await withTimeout { await server.value }
    }
}

@Suite struct CloseTests {
    @Test func readsAndWritesAfterCloseFailWithClosed() async throws {
        let group = makeGroup(loops: 1)
        defer { group.shutdown() }
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let server = serve(listener, echo)
        let connection = try await withTimeout {
            try await TCPConnection.connect(host: "127.0.0.1", port: listener.localPort, on: group.loops[0])
        }
        try await withTimeout { try await connection.write([1]) }
        connection.close()
        connection.close()  // repeatable
        await #expect(throws: TransportError.closed) { try await withTimeout { try await connection.write([2]) } }
        await #expect(throws: TransportError.closed) { _ = try await withTimeout { try await connection.read() } }
        // From the loop thread too.
        let onLoop = try await withTimeout {
            await Task(executorPreference: group.loops[0].taskExecutor) { () -> TransportError? in
                do { try await connection.write([3]) } catch { return error as? TransportError }
                return nil
            }.value
        }
        #expect(onLoop == .closed)
        listener.shutdown(gracePeriod: .milliseconds(100))
        try await withTimeout { await server.value }
    }
}
