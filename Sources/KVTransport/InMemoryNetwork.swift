import Synchronization

/// An `RPCNetwork` inside one process, for single-process clusters and tests. Messages are
/// encoded to the same `RPCFrame` bytes as on TCP and decoded on arrival; faults are injected
/// per link: drop (with a probability, drawn from an injected random source), delay,
/// partition (one way or both ways), and killing/reviving a node.
///
/// What a caller sees mirrors TCP: a lost request or reply ends in `.timedOut`; a killed or
/// absent peer refuses (`.connectionRefused`); a killed node's own calls fail with `.closed`.
/// Delays and timeouts use real time (`Task.sleep`).
public final class InMemoryNetwork: RPCNetwork {
    /// A directed link between two nodes (`from` sends to `to`).
    public struct Link: Hashable, Sendable {
        public var from: NodeAddress
        public var to: NodeAddress

        public init(from: NodeAddress, to: NodeAddress) {
            self.from = from
            self.to = to
        }
    }

    private struct State {
        var handlers: [NodeAddress: RPCHandler] = [:]
        var killed: Set<NodeAddress> = []
        var blocked: Set<Link> = []
        var dropProbability: [Link: Double] = [:]
        var defaultDropProbability = 0.0
        var delay: [Link: Duration] = [:]
        var defaultDelay = Duration.zero
        var nextPort = 1
        var random: any RandomNumberGenerator & Sendable
        var delivered = 0
        var dropped = 0
    }

    public let settings: RPCSettings
    private let state: Mutex<State>

    /// A network whose drop decisions come from `random` (pass a seeded generator for
    /// reproducible tests).
    public init(random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(), settings: RPCSettings = RPCSettings()) {
        self.settings = settings
        state = Mutex(State(random: random))
    }

    // MARK: Membership

    /// Every request runs as a task of its own here, whatever `runsInline` says.
    public func join(_ address: NodeAddress, handler: @escaping RPCHandler, runsInline: @escaping RPCInlinePolicy)
        async throws(TransportError) -> any RPCEndpoint
    {
        let bound: NodeAddress? = state.withLock { state in
            var address = address
            if address.port == 0 {
                while state.handlers[NodeAddress(host: address.host, port: state.nextPort)] != nil { state.nextPort += 1 }
                address.port = state.nextPort
                state.nextPort += 1
            }
            if state.handlers[address] != nil { return nil }
            state.handlers[address] = handler
            state.killed.remove(address)
            return address
        }
        guard let bound else { throw .bindFailed(host: address.host, port: address.port, errno: 98) }
        return InMemoryEndpoint(address: bound, network: self)
    }

    func leave(_ address: NodeAddress) {
        state.withLock { _ = $0.handlers.removeValue(forKey: address) }
    }

    // MARK: Faults

    /// Kills `node`: it answers nothing, its replies in flight are lost, and its own calls fail.
    public func kill(_ node: NodeAddress) { state.withLock { _ = $0.killed.insert(node) } }
    /// Brings a killed node back (with the handler it joined with).
    public func revive(_ node: NodeAddress) { state.withLock { _ = $0.killed.remove(node) } }

    /// Cuts the link `from → to`; with `bothWays`, `to → from` as well. Messages on a cut link are lost.
    public func partition(_ from: NodeAddress, _ to: NodeAddress, bothWays: Bool = true) {
        state.withLock { state in
            state.blocked.insert(Link(from: from, to: to))
            if bothWays { state.blocked.insert(Link(from: to, to: from)) }
        }
    }

    /// Cuts every link between the two sides, both ways.
    public func partition(_ side: [NodeAddress], from other: [NodeAddress]) {
        for a in side { for b in other { partition(a, b, bothWays: true) } }
    }

    /// Restores `from → to` (and the reverse with `bothWays`).
    public func heal(_ from: NodeAddress, _ to: NodeAddress, bothWays: Bool = true) {
        state.withLock { state in
            state.blocked.remove(Link(from: from, to: to))
            if bothWays { state.blocked.remove(Link(from: to, to: from)) }
        }
    }

    /// Removes every partition, drop probability and delay (killed nodes stay killed).
    public func healAll() {
        state.withLock { state in
            state.blocked.removeAll()
            state.dropProbability.removeAll()
            state.defaultDropProbability = 0
            state.delay.removeAll()
            state.defaultDelay = .zero
        }
    }

    /// Loses each message on `link` (every link when nil) with probability `probability` (0…1).
    public func setDropProbability(_ probability: Double, on link: Link? = nil) {
        let p = min(1, max(0, probability))
        state.withLock { state in
            if let link { state.dropProbability[link] = p } else { state.defaultDropProbability = p }
        }
    }

    /// Delays each message on `link` (every link when nil) by `delay`.
    public func setDelay(_ delay: Duration, on link: Link? = nil) {
        state.withLock { state in
            if let link { state.delay[link] = delay } else { state.defaultDelay = delay }
        }
    }

    /// Messages delivered and messages lost so far.
    public var statistics: (delivered: Int, dropped: Int) { state.withLock { ($0.delivered, $0.dropped) } }

    // MARK: Delivery

    enum Hop {
        case deliver(after: Duration, handler: RPCHandler?)
        case lost
        case senderDown
        case refused
    }

    /// Decides the fate of one message on `from → to`; `needsHandler` when it is a request.
    private func route(from: NodeAddress, to: NodeAddress, needsHandler: Bool) -> Hop {
        state.withLock { state in
            if state.killed.contains(from) { return .senderDown }
            let link = Link(from: from, to: to)
            if needsHandler && (state.handlers[to] == nil || state.killed.contains(to)) {
                return .refused
            }
            if state.blocked.contains(link) || (!needsHandler && state.killed.contains(to)) {
                state.dropped += 1
                return .lost
            }
            let p = state.dropProbability[link] ?? state.defaultDropProbability
            if p > 0 && Double.random(in: 0..<1, using: &state.random) < p {
                state.dropped += 1
                return .lost
            }
            state.delivered += 1
            return .deliver(after: state.delay[link] ?? state.defaultDelay, handler: state.handlers[to])
        }
    }

    private func isKilled(_ node: NodeAddress) -> Bool { state.withLock { $0.killed.contains(node) } }

    /// Carries `frame` over `from → to`: nil when lost; throws for a refused or dead sender.
    private func carry(_ frame: RPCFrame, from: NodeAddress, to: NodeAddress, request: Bool)
        async throws(TransportError) -> (RPCFrame, RPCHandler?)?
    {
        switch route(from: from, to: to, needsHandler: request) {
        case .senderDown:
            throw .closed
        case .refused:
            throw .connectionRefused(host: to.host, port: to.port)
        case .lost:
            return nil
        case let .deliver(delay, handler):
            let bytes = frame.encoded()
            if delay > .zero { try? await Task.sleep(for: delay) }
            do {
                return (try RPCFrame.decode(bytes, maxFrameBytes: settings.maxFrameBytes), handler)
            } catch {
                throw .badFrame(error)
            }
        }
    }

    /// One request/response exchange, or nil when either leg was lost (the caller times out).
    func exchange(_ request: RPCFrame, from: NodeAddress, to: NodeAddress) async throws(TransportError) -> RPCFrame? {
        guard let (arrived, handler) = try await carry(request, from: from, to: to, request: true), let handler else {
            return nil
        }
        let reply: RPCFrame
        do {
            let payload = try await handler(RPCRequest(method: arrived.method, payload: arrived.payload))
            reply = RPCFrame(kind: .response, method: arrived.method, requestID: arrived.requestID, payload: payload)
        } catch {
            reply = RPCFrame(
                kind: .failure, method: arrived.method, requestID: arrived.requestID,
                payload: Array(String(describing: error).utf8))
        }
        // A node killed while handling the request never answers.
        if isKilled(to) { return nil }
        do {
            return try await carry(reply, from: to, to: from, request: false)?.0
        } catch {
            return nil
        }
    }

    /// Delivers a one-way message (errors other than a dead sender are silent, as on TCP).
    func deliverOneWay(_ message: RPCFrame, from: NodeAddress, to: NodeAddress) async throws(TransportError) {
        let arrived: (RPCFrame, RPCHandler?)?
        do {
            arrived = try await carry(message, from: from, to: to, request: true)
        } catch {
            if error == .closed { throw error }
            return
        }
        guard let (frame, handler) = arrived, let handler else { return }
        _ = try? await handler(RPCRequest(method: frame.method, payload: frame.payload))
    }
}

/// A node on an `InMemoryNetwork`.
final class InMemoryEndpoint: RPCEndpoint {
    let address: NodeAddress
    private let network: InMemoryNetwork
    private let nextRequestID = Atomic<UInt64>(1)
    private let closed = Atomic<Bool>(false)

    init(address: NodeAddress, network: InMemoryNetwork) {
        self.address = address
        self.network = network
    }

    func call(_ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration) async throws(TransportError)
        -> [UInt8]
    {
        if closed.load(ordering: .acquiring) { throw .closed }
        let id = nextRequestID.add(1, ordering: .relaxed).oldValue
        let request = RPCFrame(kind: .request, method: method, requestID: id, payload: payload)
        let network = self.network, from = address
        // The exchange runs on as its own task, like a remote handler that keeps working after
        // the caller gave up; the caller takes whichever comes first, the reply or the timeout.
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<RPCFrame, TransportError>, Never>) in
            let answer = FirstAnswer(continuation)
            let timer = Task {
                try? await Task.sleep(for: timeout)
                answer.resume(.failure(.timedOut(operation: "call \(method) to \(peer)")))
            }
            Task {
                do throws(TransportError) {
                    if let reply = try await network.exchange(request, from: from, to: peer) {
                        answer.resume(.success(reply))
                        timer.cancel()
                    }
                } catch {
                    answer.resume(.failure(error))
                    timer.cancel()
                }
            }
        }
        let reply = try outcome.get()
        if closed.load(ordering: .acquiring) { throw .closed }
        switch reply.kind {
        case .failure: throw .remote(String(decoding: reply.payload, as: UTF8.self))
        default: return reply.payload
        }
    }

    func send(_ peer: NodeAddress, method: UInt16, payload: [UInt8]) async throws(TransportError) {
        if closed.load(ordering: .acquiring) { throw .closed }
        try await network.deliverOneWay(
            RPCFrame(kind: .oneWay, method: method, requestID: 0, payload: payload), from: address, to: peer)
    }

    func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        network.leave(address)
    }
}

/// Resumes a continuation with the first result offered and ignores the rest.
final class FirstAnswer<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) { self.continuation = Mutex(continuation) }

    func resume(_ value: Value) {
        let waiting = continuation.withLock { slot in
            defer { slot = nil }
            return slot
        }
        waiting?.resume(returning: value)
    }
}
