/// Limits of the HTTP/1.1 front end. Loaded from the `[http]` table of a config file.
public struct HTTPSettings: Sendable, Equatable {
    /// TCP port of the HTTP API; 0 picks a free port. Default 8080.
    public var port: Int
    /// Longest request line (method, target, version) accepted, in bytes; longer is 414. Default 8,192.
    public var maxRequestLineBytes: Int
    /// Most bytes of header fields (all lines together) accepted; more is 431. Default 16,384.
    public var maxHeaderBytes: Int
    /// Most header fields in one request; more is 431. Default 100.
    public var maxHeaderCount: Int
    /// Largest request body, in bytes; larger is 413. Default 2,097,152 (2 MiB: a 1 MiB value in base64 plus JSON).
    public var maxBodyBytes: Int
    /// Once the first byte of a request arrived, the longest wait for each further
    /// read before the connection is closed, in milliseconds. Default 30,000.
    public var requestTimeoutMillis: Int

    public init(
        port: Int = 8080, maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 16384,
        maxHeaderCount: Int = 100, maxBodyBytes: Int = 2 << 20, requestTimeoutMillis: Int = 30_000
    ) {
        self.port = port
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeoutMillis = requestTimeoutMillis
    }
}
