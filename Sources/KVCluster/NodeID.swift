import KVCore

/// A node's stable name in the cluster (`--node-id`), unique among members.
/// Ordered as Swift strings (Unicode scalar order; bytewise for ASCII names), the
/// same on every node, so every node sorts members the same way.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name as configured.
    public let name: String

    @inlinable public init(_ name: String) { self.name = name }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        lhs.name < rhs.name
    }

    public var description: String { name }
}

/// Where a node listens for node-to-node RPC (gossip, replica reads and writes).
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible {
    /// Host name or IP literal, e.g. `127.0.0.1`.
    public var host: String
    /// TCP port (or the in-memory network's port number).
    public var port: UInt16

    @inlinable public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (the `--seeds` syntax). IPv6 literals go in brackets: `[::1]:7000`.
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
