// runtime-bench: what a message between event loops costs, and TCP echo on the loops.
//
//   swift run -c release --package-path Perf runtime-bench [--seconds S] [--spin-us N,M,…]
//
// Prints one line per figure. Loops are pinned (one per CPU); run it on an otherwise idle
// machine, as the cross-loop figures are dominated by how fast a sleeping core wakes up.
//
// Measured 2026-11-23 on the project VM (2 vCPU, one NUMA node), release build,
// `runtime-bench --seconds 1 --spin-us 0,20,50`:
//   same-loop actor call                       0.021 µs
//   cross-loop actor round trip, no idle spin  52 µs    (two futex wake-ups of a sleeping vCPU)
//   cross-loop actor round trip, 20–50 µs spin 0.47–0.50 µs
//   batched post A→B (1 M closures)            0.14 µs/message (one wake-up per batch)
//   TCP echo, 32 conns, 64 B, in-process       148 k round trips/s
//   RPC over TCP, 64 callers, one connection   123 k calls/s (callers on the global pool)
import Foundation
import KVRuntime
import KVTransport

/// An actor placed on an event loop.
actor Cell {
    let loop: EventLoop
    var value = 0
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.unownedExecutor }
    init(loop: EventLoop) { self.loop = loop }

    var wrongThread = 0

    func bump() -> Int {
        if !loop.inEventLoop { wrongThread += 1 }
        value &+= 1
        return value
    }

    func misplacedCalls() -> Int { wrongThread }

    /// Awaits `peer.bump()` `rounds` times, one at a time. Touching this actor's state after
    /// each call forces the hop back (the optimizer drops a hop nothing needs).
    func ping(_ peer: Cell, rounds: Int) async -> Int {
        for _ in 0..<rounds {
            value &+= await peer.bump()
            if !loop.inEventLoop { wrongThread += 1 }
        }
        return value
    }
}

/// A counter the posted closures increment (only ever touched on the target loop).
final class Tally: @unchecked Sendable {
    var count = 0
}

struct Options {
    var seconds = 1.0
    var spins: [Int] = [0, 50]

    init(_ arguments: [String]) {
        var i = 1
        while i < arguments.count {
            let flag = arguments[i]
            let value = i + 1 < arguments.count ? arguments[i + 1] : ""
            switch flag {
            case "--seconds": seconds = Double(value) ?? seconds
            case "--spin-us": spins = value.split(separator: ",").compactMap { Int($0) }
            default:
                print("usage: runtime-bench [--seconds S] [--spin-us N]")
                exit(2)
            }
            i += 2
        }
    }
}

func micros(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
}

/// Runs 32 echo clients on `group`'s loops until `deadline`; returns the round trips made.
nonisolated func echoClients(port: Int, group: EventLoopGroup, until deadline: ContinuousClock.Instant) async throws -> Int {
    try await withThrowingTaskGroup(of: Int.self) { clients in
        for _ in 0..<32 {
            let loop = group.next()
            clients.addTask(executorPreference: loop.taskExecutor) {
                let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: loop)
                defer { connection.close() }
                let message = [UInt8](repeating: 0x42, count: 64)
                var trips = 0
                while ContinuousClock.now < deadline {
                    try await connection.write(message)
                    _ = try await connection.read(exactly: message.count)
                    trips += 1
                }
                return trips
            }
        }
        return try await clients.reduce(0, +)
    }
}

/// Runs 64 concurrent RPC callers until `deadline`; returns the calls answered.
nonisolated func rpcCallers(from node: any RPCEndpoint, to peer: NodeAddress, until deadline: ContinuousClock.Instant) async -> Int {
    await withTaskGroup(of: Int.self) { callers in
        for _ in 0..<64 {
            callers.addTask {
                let payload = [UInt8](repeating: 7, count: 64)
                var calls = 0
                while ContinuousClock.now < deadline {
                    guard (try? await node.call(peer, method: 1, payload: payload, timeout: .seconds(5))) != nil else { break }
                    calls += 1
                }
                return calls
            }
        }
        return await callers.reduce(0, +)
    }
}

func format(_ value: Double) -> String { String(format: "%.3f", value) }

let options = Options(CommandLine.arguments)
let clock = ContinuousClock()
let topology = CPUTopology.detect()
print("topology: \(topology)")

for spin in options.spins {
    let group = EventLoopGroup(settings: RuntimeSettings(loopCount: max(2, topology.cpuCount), idleSpin: .microseconds(spin)))
    let a = Cell(loop: group.loops[0]), a2 = Cell(loop: group.loops[0]), b = Cell(loop: group.loops[1])
    print("loops: \(group.loops.count), pinned: \(group.loops.map { $0.pinnedCPU.map(String.init) ?? "-" }.joined(separator: ",")), idle spin \(spin) µs")

    // Same-loop actor call.
    _ = await a.ping(a2, rounds: 10_000)
    var rounds = 0
    var start = clock.now
    while clock.now - start < .seconds(options.seconds) {
        _ = await a.ping(a2, rounds: 100_000)
        rounds += 100_000
    }
    print("same-loop actor call: \(format(micros(clock.now - start) / Double(rounds))) µs")

    // Cross-loop round trip: an actor on loop 0 awaits an actor on loop 1 (two hops).
    _ = await a.ping(b, rounds: 1_000)
    rounds = 0
    start = clock.now
    while clock.now - start < .seconds(options.seconds) {
        _ = await a.ping(b, rounds: 2_000)
        rounds += 2_000
    }
    print("cross-loop actor round trip (A→B→A): \(format(micros(clock.now - start) / Double(rounds))) µs (\(rounds) rounds, calls run off their loop: \(await b.misplacedCalls() + a.misplacedCalls()))")

    // Batched one-way posts A → B (many in flight: one wake-up per batch).
    let tally = Tally()
    let posts = 1_000_000
    let target = group.loops[1]
    start = clock.now
    await group.loops[0].submit {
        for _ in 0..<posts { target.execute { tally.count += 1 } }
    }
    await target.submit {}
    let postElapsed = clock.now - start
    let delivered = await target.submit { tally.count }
    print("batched post A→B: \(format(micros(postElapsed) / Double(posts))) µs/message (\(delivered) delivered)")
    group.shutdown()
}

// TCP echo: 32 connections, clients and server on the same loops, one message in flight each.
let group = EventLoopGroup(settings: RuntimeSettings(loopCount: max(2, topology.cpuCount)))
let listener = try TCPListener.bind(host: "127.0.0.1", port: 0, group: group)
let server = Task {
    await listener.run { connection in
        while let bytes = try? await connection.read(), !bytes.isEmpty {
            guard (try? await connection.write(bytes)) != nil else { return }
        }
    }
}
let start = clock.now
let trips = try await echoClients(port: listener.localPort, group: group, until: clock.now + .seconds(options.seconds))
let seconds = micros(clock.now - start) / 1e6
print("TCP echo, 32 connections, 64 B, in-process clients: \(Int(Double(trips) / seconds)) round trips/s")
listener.shutdown(gracePeriod: .seconds(1))
await server.value

// RPC over TCP: 64 callers multiplexed on one connection to one peer.
let network = TCPNetwork(group: group)
let serverNode = try await network.join(NodeAddress(host: "127.0.0.1", port: 0)) { $0.payload }
let clientNode = try await network.join(NodeAddress(host: "127.0.0.1", port: 0)) { $0.payload }
let rpcStart = clock.now
let calls = await rpcCallers(from: clientNode, to: serverNode.address, until: clock.now + .seconds(options.seconds))
print("RPC over TCP, 64 callers on one connection, 64 B: \(Int(Double(calls) / (micros(clock.now - rpcStart) / 1e6))) calls/s")
await clientNode.close()
await serverNode.close()
group.shutdown()
