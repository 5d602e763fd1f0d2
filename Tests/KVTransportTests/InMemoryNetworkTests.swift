import KVCore
import KVTestSupport
import Testing
@testable import KVTransport

@Suite struct InMemoryNetworkTests {
    let short = Duration.milliseconds(60)

    func threeNodes(_ network: InMemoryNetwork, log: Locked<[UInt8]> = Locked([])) async throws
        -> (any RPCEndpoint, any RPCEndpoint, any RPCEndpoint)
    {
        let a = try await network.join(NodeAddress(host: "a", port: 0), handler: testHandler(log: log))
        let b = try await network.join(NodeAddress(host: "b", port: 0), handler: testHandler(log: log))
        let c = try await network.join(NodeAddress(host: "c", port: 0), handler: testHandler(log: log))
        return (a, b, c)
    }

    func isTimeout(_ error: TransportError?) -> Bool {
        if case .timedOut = error { return true }
        return false
    }

    @Test func callsAndFailuresLookLikeTCP() async throws {
        let network = InMemoryNetwork(random: SplitMix64(seed: 7))
        let (a, b, _) = try await threeNodes(network)
        try await withTimeout { () async throws in
            #expect(try await a.call(b.address, method: Method.echo, payload: [1, 2], timeout: .seconds(1)) == [1, 2])
            await #expect(throws: TransportError.remote("refused by handler")) {
                _ = try await a.call(b.address, method: Method.fail, payload: [], timeout: .seconds(1))
            }
            await #expect(throws: TransportError.connectionRefused(host: "nobody", port: 1)) {
                _ = try await a.call(NodeAddress(host: "nobody", port: 1), method: Method.echo, payload: [], timeout: .seconds(1))
            }
        }
        await #expect(throws: TransportError.self) {
            _ = try await network.join(b.address, handler: testHandler())
        }
    }

    @Test func dropsFollowTheInjectedRandomSource() async throws {
        let network = InMemoryNetwork(random: SplitMix64(seed: 11))
        let (a, b, _) = try await threeNodes(network)
        network.setDropProbability(1, on: .init(from: a.address, to: b.address))
        let error = await #expect(throws: TransportError.self) {
            _ = try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [], timeout: short) }
        }
        #expect(isTimeout(error))
        network.healAll()
        network.setDropProbability(0.5)
        let results = try await withTimeout {
            await withTaskGroup(of: Bool.self) { calls in
                for _ in 0..<40 {
                    calls.addTask { (try? await a.call(b.address, method: Method.echo, payload: [1], timeout: self.short)) != nil }
                }
                return await calls.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        let succeeded = results.filter { $0 }.count
        // Each exchange needs both legs: about a quarter succeed; far from none and from all.
        #expect(succeeded > 0 && succeeded < 40)
        #expect(network.statistics.dropped > 0)
    }

    @Test func delaysApplyToBothLegs() async throws {
        let network = InMemoryNetwork()
        let (a, b, _) = try await threeNodes(network)
        network.setDelay(.milliseconds(40), on: .init(from: a.address, to: b.address))
        network.setDelay(.milliseconds(40), on: .init(from: b.address, to: a.address))
        let clock = ContinuousClock()
        let start = clock.now
        let reply = try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [5], timeout: .seconds(2)) }
        #expect(reply == [5])
        #expect(clock.now - start >= .milliseconds(80))
        let error = await #expect(throws: TransportError.self) {
            _ = try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [], timeout: .milliseconds(30)) }
        }
        #expect(isTimeout(error))
    }

    @Test func oneWayAndTwoWayPartitions() async throws {
        let network = InMemoryNetwork()
        let log = Locked<[UInt8]>([])
        let (a, b, c) = try await threeNodes(network, log: log)
        network.partition(a.address, b.address, bothWays: false)
        try await withTimeout { () async throws in
            // a → b is cut: a's request is lost; b's request reaches a but the reply is lost.
            let lost = await #expect(throws: TransportError.self) {
                _ = try await a.call(b.address, method: Method.echo, payload: [], timeout: self.short)
            }
            #expect(self.isTimeout(lost))
            try await b.send(a.address, method: Method.record, payload: [1])
            try await a.send(b.address, method: Method.record, payload: [2])
            #expect(try await a.call(c.address, method: Method.echo, payload: [3], timeout: .seconds(1)) == [3])
        }
        #expect(log.value == [1])

        network.heal(a.address, b.address)
        network.partition([a.address], from: [b.address, c.address])
        try await withTimeout { () async throws in
            for (from, to) in [(a, b), (b, a), (c, a), (a, c)] {
                let error = await #expect(throws: TransportError.self) {
                    _ = try await from.call(to.address, method: Method.echo, payload: [], timeout: self.short)
                }
                #expect(self.isTimeout(error))
            }
            #expect(try await b.call(c.address, method: Method.echo, payload: [4], timeout: .seconds(1)) == [4])
        }
        network.healAll()
        #expect(try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [6], timeout: .seconds(1)) } == [6])
    }

    @Test func killedNodesRefuseAndCannotSendUntilRevived() async throws {
        let network = InMemoryNetwork()
        let (a, b, _) = try await threeNodes(network)
        network.kill(b.address)
        try await withTimeout { () async throws in
            await #expect(throws: TransportError.connectionRefused(host: b.address.host, port: b.address.port)) {
                _ = try await a.call(b.address, method: Method.echo, payload: [], timeout: .seconds(1))
            }
            await #expect(throws: TransportError.closed) {
                _ = try await b.call(a.address, method: Method.echo, payload: [], timeout: .seconds(1))
            }
        }
        network.revive(b.address)
        #expect(try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [7], timeout: .seconds(1)) } == [7])

        // Killed while handling: the reply never comes.
        let started = Locked(false)
        let d = try await network.join(NodeAddress(host: "d", port: 0)) { request in
            started.withLock { $0 = true }
            try await Task.sleep(for: .milliseconds(100))
            return request.payload
        }
        let inFlight = Task { try await a.call(d.address, method: Method.echo, payload: [1], timeout: .milliseconds(400)) }
        #expect(await eventually { started.value })
        network.kill(d.address)
        let error = await #expect(throws: TransportError.self) { _ = try await withTimeout { try await inFlight.value } }
        #expect(isTimeout(error))
    }

    @Test func closedEndpointsLeaveTheNetwork() async throws {
        let network = InMemoryNetwork()
        let (a, b, _) = try await threeNodes(network)
        await b.close()
        await #expect(throws: TransportError.connectionRefused(host: b.address.host, port: b.address.port)) {
            _ = try await withTimeout { try await a.call(b.address, method: Method.echo, payload: [], timeout: .seconds(1)) }
        }
        await #expect(throws: TransportError.closed) {
            _ = try await b.call(a.address, method: Method.echo, payload: [], timeout: .seconds(1))
        }
    }
}
