/// IPv4 literals for the socket calls; `localhost` means 127.0.0.1.
enum IPv4Host {
    static func normalize(_ host: String) throws(TransportError) -> String {
        if host == "localhost" { return "127.0.0.1" }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { throw .invalidAddress(host) }
        return host
    }
}
