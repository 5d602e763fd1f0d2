import KVRuntime
import KVServer
import KVTransport

/// A minimal HTTP/1.1 client for the admin commands (`kvd decommission`): one
/// connection per request (`Connection: close`), the whole response read until the
/// server closes, the body parsed as JSON.
struct AdminClient {
    /// One response: status code and JSON body (`.null` when the body is not JSON).
    struct Response {
        var status: Int
        var json: JSONValue

        /// A string field of the top-level object.
        func string(_ name: String) -> String? {
            if case .string(let s)? = json.objectValue?[name] { return s }
            return nil
        }

        /// An integer field of the top-level object.
        func integer(_ name: String) -> Int64? {
            if case .integer(let n)? = json.objectValue?[name] { return n }
            return nil
        }
    }

    let host: String
    let port: Int
    let loop: EventLoop

    /// Sends `method target` (no body) and returns the response; `timeout` bounds each wait for bytes.
    func request(_ method: String, _ target: String, timeout: Duration) async throws(TransportError) -> Response {
        let connection = try await TCPConnection.connect(host: host, port: port, on: loop)
        defer { connection.close() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if method == "POST" { head += "Content-Length: 0\r\n" }
        try await connection.write(Array((head + "\r\n").utf8))
        var bytes: [UInt8] = []
        while true {
            let chunk = try await connection.read(timeout: timeout)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { Array(text[$0.upperBound...].utf8) } ?? []
        return Response(status: status, json: (try? JSONValue.parse(body)) ?? .null)
    }
}
