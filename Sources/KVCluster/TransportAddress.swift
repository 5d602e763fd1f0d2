import KVTransport

extension NodeAddress {
    /// The same address as the transport layer spells it.
    public var transport: KVTransport.NodeAddress { KVTransport.NodeAddress(host: host, port: Int(port)) }

    /// The cluster's spelling of a transport address.
    public init(_ address: KVTransport.NodeAddress) {
        self.init(host: address.host, port: UInt16(truncatingIfNeeded: address.port))
    }
}
