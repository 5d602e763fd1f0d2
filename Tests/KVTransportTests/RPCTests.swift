import KVTestSupport
import KVRuntime
import Testing
@testable import KVTransport

enum Method {
    static let echo: UInt16 = 1
    static let fail: UInt16 = 2
    static let slowEcho: UInt16 = 3
    static let record: UInt16 = 4
}

struct Refusal: Error, CustomStringConvertible {
    var description: String { "refused by handler" }
}

/// Echo, echo after `payload[0]` × 10 ms, or fail; `record` appends to `log`.
func testHandler(log: Locked<[UInt8]> = Locked([])) -> RPCHandler {
    { request in
        switch request.method {
        case Method.echo: return request.payload
        case Method.slowEcho:
            try await Task.sleep(for: .milliseconds(10 * Int(request.payload.first ?? 0)))
            return request.payload
        case Method.record:
            log.withLock { $0.append(contentsOf: request.payload) }
            return []
        default: throw Refusal()
        }
    }
}

@Suite struct RPCOverTCPTests {
    let settings = RPCSettings(reconnectInitialDelay: .milliseconds(10), reconnectMaxDelay: .milliseconds(40),
                               shutdownGracePeriod: .milliseconds(200))

    @Test func manyConcurrentRequestsShareOneConnectionAndAnswerOutOfOrder() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let server = try RPCServer.bind(host: "127.0.0.1", port: 0, group: group, settings: settings, handler: testHandler())
        let serving = Task { await server.run() }
        let peer = RPCPeer(address: NodeAddress(host: "127.0.0.1", port: server.localPort), loop: group.loops[0], settings: settings)
        let order = Locked<[UInt8]>([])
        let correct = try await withTimeout(20) {
            try await withThrowingTaskGroup(of: Bool.self) { calls in
                for i in 0..<200 {
                    calls.addTask {
                        // Later requests sleep less, so replies come back out of order.
                        let delay = UInt8(10 - (i % 10))
                        let payload = [delay, UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8)]
                        let reply = try await peer.call(method: Method.slowEcho, payload: payload, timeout: .seconds(10))
                        order.withLock { $0.append(delay) }
                        return reply == payload
                    }
                }
                return try await calls.reduce(true) { $0 && $1 }
            }
        }
        #expect(correct)
        #expect(server.listener.acceptedTotal == 1)
        #expect(order.value != order.value.sorted(by: >), "replies arrived in request order")
        #expect(await peer.inFlight == 0)
        await peer.close()
        server.shutdown()
        try await withTimeout { await serving.value }
    }

    @Test func remoteErrorsAndTimeoutsAreTyped() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let server = try RPCServer.bind(host: "127.0.0.1", port: 0, group: group, settings: settings, handler: testHandler())
        let serving = Task { await server.run() }
        let peer = RPCPeer(address: NodeAddress(host: "127.0.0.1", port: server.localPort), loop: group.loops[1], settings: settings)
        try await withTimeout { () async throws in
            await #expect(throws: TransportError.remote("refused by handler")) {
                _ = try await peer.call(method: Method.fail, payload: [], timeout: .seconds(5))
            }
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: TransportError.timedOut(operation: "call 3 to 127.0.0.1:\(server.localPort)")) {
                _ = try await peer.call(method: Method.slowEcho, payload: [255], timeout: .milliseconds(30))
            }
            // The handler takes 2.55 s; a timeout that waited for it would be far past 2 s even on a loaded machine.
            #expect(clock.now - start < .seconds(2), "the call waited for the slow handler")
            // The connection survives a timed-out request.
            #expect(try await peer.call(method: Method.echo, payload: [4, 2], timeout: .seconds(5)) == [4, 2])
        }
        await peer.close()
        server.shutdown()
        try await withTimeout { await serving.value }
    }

    @Test func reconnectsWithBackoffAfterTheServerRestarts() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let first = try RPCServer.bind(host: "127.0.0.1", port: 0, group: group, settings: settings, handler: testHandler())
        let port = first.localPort
        let firstRun = Task { await first.run() }
        let peer = RPCPeer(address: NodeAddress(host: "127.0.0.1", port: port), loop: group.loops[0], settings: settings)
        #expect(try await withTimeout { try await peer.call(method: Method.echo, payload: [1], timeout: .seconds(5)) } == [1])

        first.shutdown()
        try await withTimeout { await firstRun.value }
        // Down: calls fail fast (reset, refused, or backing off), never hang.
        for _ in 0..<3 {
            let error = await #expect(throws: TransportError.self) {
                _ = try await withTimeout { try await peer.call(method: Method.echo, payload: [2], timeout: .seconds(5)) }
            }
            #expect(error.map { [.connectionReset, .connectionRefused(host: "127.0.0.1", port: port)].contains($0) || {
                if case .unreachable = $0 { return true }
                return false
            }($0) } == true)
        }

        let second = try RPCServer.bind(host: "127.0.0.1", port: port, group: group, settings: settings, handler: testHandler())
        let secondRun = Task { await second.run() }
        let recovered = try await withTimeout { () -> Bool in
            for _ in 0..<200 {
                if let reply = try? await peer.call(method: Method.echo, payload: [3], timeout: .seconds(1)), reply == [3] {
                    return true
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        #expect(recovered)
        #expect(await peer.isConnected)
        await peer.close()
        second.shutdown()
        try await withTimeout { await secondRun.value }
    }

    @Test func corruptFramesCloseTheConnectionWithATypedError() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        // A server that answers every request with a frame whose checksum is wrong.
        let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
        let serving = serve(listener) { connection in
            var decoder = RPCFrameDecoder(maxFrameBytes: 1 << 20)
            while let bytes = try? await connection.read(), !bytes.isEmpty {
                decoder.append(bytes)
                while let frame = try? decoder.next() {
                    var reply = RPCFrame(kind: .response, method: frame.method, requestID: frame.requestID, payload: [1, 2]).encoded()
                    reply[reply.count - 1] ^= 0x55
                    try? await connection.write(reply)
                }
            }
        }
        let peer = RPCPeer(address: NodeAddress(host: "127.0.0.1", port: listener.localPort), loop: group.loops[0], settings: settings)
        let error = await #expect(throws: TransportError.self) {
            _ = try await withTimeout { try await peer.call(method: Method.echo, payload: [1], timeout: .seconds(5)) }
        }
        guard case .badFrame(.checksumMismatch) = error else {
            Issue.record("expected a checksum error, got \(String(describing: error))")
            return
        }
        await peer.close()
        listener.shutdown(gracePeriod: .milliseconds(100))
        try await withTimeout { await serving.value }
    }

    @Test func serverDropsConnectionsThatSendGarbage() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let server = try RPCServer.bind(host: "127.0.0.1", port: 0, group: group, settings: settings, handler: testHandler())
        let serving = Task { await server.run() }
        let outcome = try await withTimeout { () -> [UInt8]? in
            let connection = try await TCPConnection.connect(host: "127.0.0.1", port: server.localPort, on: group.loops[0])
            try await connection.write([0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 0, count: 32))
            return try? await connection.read()
        }
        #expect(outcome == nil || outcome == [])
        server.shutdown()
        try await withTimeout { await serving.value }
    }

    @Test func tcpNetworkEndpointsCallEachOther() async throws {
        let group = makeGroup()
        defer { group.shutdown() }
        let network: any RPCNetwork = TCPNetwork(group: group, settings: settings)
        let log = Locked<[UInt8]>([])
        let a = try await network.join(NodeAddress(host: "127.0.0.1", port: 0), handler: testHandler())
        let b = try await network.join(NodeAddress(host: "127.0.0.1", port: 0), handler: testHandler(log: log))
        #expect(a.address.port != 0 && a.address != b.address)
        try await withTimeout {
            #expect(try await a.call(b.address, method: Method.echo, payload: [9], timeout: .seconds(5)) == [9])
            #expect(try await b.call(a.address, method: Method.echo, payload: [8], timeout: .seconds(5)) == [8])
            try await a.send(b.address, method: Method.record, payload: [7])
        }
        #expect(await eventually { log.value == [7] })
        try await withTimeout {
            await a.close()
            await b.close()
        }
        await #expect(throws: TransportError.closed) {
            _ = try await a.call(b.address, method: Method.echo, payload: [], timeout: .seconds(1))
        }
    }
}
