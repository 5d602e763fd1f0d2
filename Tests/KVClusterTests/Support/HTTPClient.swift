import KVRuntime
import KVTransport

/// A minimal HTTP/1.1 client for the process tests: one connection per request
/// (`Connection: close`), the whole response read until the server closes.
struct TestHTTPResponse {
    var status: Int
    var body: String
}

enum TestHTTP {
    static let loop = EventLoop(settings: RuntimeSettings(loopCount: 1, pinThreads: false, preferLocalNUMANode: false))

    static func request(
        _ method: String, port: Int, _ target: String, body: String = "", timeout: Duration = .seconds(5)
    ) async throws -> TestHTTPResponse {
        let connection = try await TCPConnection.connect(host: "127.0.0.1", port: port, on: loop)
        defer { connection.close() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if !body.isEmpty || method == "POST" { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        try await connection.write(Array((head + "\r\n" + body).utf8))
        var bytes: [UInt8] = []
        while true {
            let chunk = try await connection.read(timeout: timeout)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
        let payload = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return TestHTTPResponse(status: status, body: payload)
    }
}
