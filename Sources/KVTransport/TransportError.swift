/// What went wrong on a connection, a listener or an RPC call.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host is not an IPv4 address (or `localhost`).
    case invalidAddress(String)
    /// The listening socket could not be created, bound or put in listening mode.
    case bindFailed(host: String, port: Int, errno: Int32)
    /// Nobody listens at the address (ECONNREFUSED), or the node is down.
    case connectionRefused(host: String, port: Int)
    /// The connection could not be established for another reason.
    case connectFailed(host: String, port: Int, errno: Int32)
    /// The peer reset the connection or stopped reading (ECONNRESET, EPIPE).
    case connectionReset
    /// The operation did not finish in time; the connection (or call) was abandoned.
    case timedOut(operation: String)
    /// The connection (or peer, or listener) was closed locally.
    case closed
    /// A second `read` was started while one was waiting; one reader at a time.
    case concurrentRead
    /// Another system call failed.
    case io(operation: String, errno: Int32)
    /// The peer is unreachable (partitioned, killed, or not in the network).
    case unreachable(String)
    /// The remote handler failed; the message is what it said.
    case remote(String)
    /// A received RPC frame was malformed.
    case badFrame(RPCFrameError)

    public var description: String {
        switch self {
        case .invalidAddress(let host): return "invalid IPv4 address '\(host)'"
        case let .bindFailed(host, port, errno): return "cannot listen on \(host):\(port): errno \(errno)"
        case let .connectionRefused(host, port): return "connection to \(host):\(port) refused"
        case let .connectFailed(host, port, errno): return "cannot connect to \(host):\(port): errno \(errno)"
        case .connectionReset: return "connection reset by peer"
        case .timedOut(let operation): return "\(operation) timed out"
        case .closed: return "connection closed"
        case .concurrentRead: return "a read is already waiting on this connection"
        case let .io(operation, errno): return "\(operation) failed: errno \(errno)"
        case .unreachable(let peer): return "\(peer) is unreachable"
        case .remote(let message): return "remote error: \(message)"
        case .badFrame(let error): return "bad RPC frame: \(error)"
        }
    }
}
