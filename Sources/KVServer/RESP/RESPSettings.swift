/// Settings of the RESP2 (Redis protocol) front end. Loaded from the `[resp]` table.
public struct RESPSettings: Sendable, Equatable {
    /// TCP port for Redis clients; 0 picks a free port. Default 6379.
    public var port: Int
    /// Whether the RESP listener runs at all. Default true.
    public var enabled: Bool
    /// Most arguments in one command (multibulk length). Default 65,536.
    public var maxArguments: Int
    /// Largest single argument (bulk string), in bytes. Default 2,097,152 (2 MiB).
    public var maxBulkBytes: Int
    /// Longest inline (telnet-style) command line, in bytes. Default 65,536.
    public var maxInlineBytes: Int
    /// Most bytes one command may occupy in total. Default 16,777,216 (16 MiB).
    public var maxCommandBytes: Int

    public init(
        port: Int = 6379, enabled: Bool = true, maxArguments: Int = 65536, maxBulkBytes: Int = 2 << 20,
        maxInlineBytes: Int = 65536, maxCommandBytes: Int = 16 << 20
    ) {
        self.port = port
        self.enabled = enabled
        self.maxArguments = maxArguments
        self.maxBulkBytes = maxBulkBytes
        self.maxInlineBytes = maxInlineBytes
        self.maxCommandBytes = maxCommandBytes
    }
}
