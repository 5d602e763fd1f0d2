import KVRuntime
import Logging
import Synchronization

/// `RPCNetwork` over real TCP sockets on an event loop group: each joined node runs an
/// `RPCServer`, and keeps one `RPCPeer` (one connection) per peer it calls.
public final class TCPNetwork: RPCNetwork {
    public let group: EventLoopGroup
    public let settings: RPCSettings
    private let logger: Logger

    public init(group: EventLoopGroup, settings: RPCSettings = RPCSettings(), logger: Logger = Logger(label: "kvd.rpc")) {
        self.group = group
        self.settings = settings
        self.logger = logger
    }

    public func join(_ address: NodeAddress, handler: @escaping RPCHandler, runsInline: @escaping RPCInlinePolicy)
        async throws(TransportError) -> any RPCEndpoint
    {
        let server = try RPCServer.bind(
            host: address.host, port: address.port, group: group, settings: settings, logger: logger,
            runsInline: runsInline, handler: handler)
        return TCPEndpoint(
            address: NodeAddress(host: address.host, port: server.localPort), server: server, group: group,
            settings: settings)
    }
}

/// A node on a `TCPNetwork`.
final class TCPEndpoint: RPCEndpoint {
    let address: NodeAddress
    private let server: RPCServer
    private let group: EventLoopGroup
    private let settings: RPCSettings
    private let peers = Mutex<[NodeAddress: RPCPeer]>([:])
    private let closed = Atomic<Bool>(false)
    private let serving: Task<Void, Never>

    init(address: NodeAddress, server: RPCServer, group: EventLoopGroup, settings: RPCSettings) {
        self.address = address
        self.server = server
        self.group = group
        self.settings = settings
        serving = Task { await server.run() }
    }

    private func peer(_ address: NodeAddress) throws(TransportError) -> RPCPeer {
        if closed.load(ordering: .acquiring) { throw .closed }
        return peers.withLock { table in
            if let existing = table[address] { return existing }
            let created = RPCPeer(address: address, loop: group.next(), settings: settings)
            table[address] = created
            return created
        }
    }

    func call(_ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration) async throws(TransportError)
        -> [UInt8]
    {
        try await self.peer(peer).call(method: method, payload: payload, timeout: timeout)
    }

    func start(
        _ peer: NodeAddress, method: UInt16, payload: [UInt8], timeout: Duration,
        completion: @escaping @Sendable (Result<[UInt8], TransportError>) -> Void
    ) async {
        let target: RPCPeer
        do throws(TransportError) { target = try self.peer(peer) } catch {
            completion(.failure(error))
            return
        }
        await target.start(method: method, payload: payload, timeout: timeout, completion: completion)
    }

    func send(_ peer: NodeAddress, method: UInt16, payload: [UInt8]) async throws(TransportError) {
        try await self.peer(peer).send(method: method, payload: payload)
    }

    func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        server.shutdown()
        let all = peers.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for peer in all { await peer.close() }
        await serving.value
    }
}
