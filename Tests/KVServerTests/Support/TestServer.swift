import Foundation
import KVCore
import KVRuntime
import KVTransport
import Logging
import Synchronization
@testable import KVServer

/// A wall clock the test moves by hand (for TTL tests without sleeping).
final class TestWallClock: WallClock {
    let millis: Atomic<UInt64>
    init(_ start: UInt64 = 1_800_000_000_000) { millis = Atomic(start) }
    func nowMillis() -> UInt64 { millis.load(ordering: .relaxed) }
    func advance(byMillis n: UInt64) { millis.wrappingAdd(n, ordering: .relaxed) }
}

/// A temporary directory removed by `remove()`.
struct TempDirectory {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-server-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A real `NodeServer` on 127.0.0.1 with ephemeral ports, its own two loops, and a
/// temp data directory; plus a client loop for test connections.
struct TestServer {
    let server: NodeServer
    let serving: Task<Void, Never>
    let clientLoop: EventLoop
    let directory: String

    static func settings(directory: String, configure: (inout ServerSettings) -> Void = { _ in }) -> ServerSettings {
        var s = ServerSettings()
        s.dataDirectory = directory
        s.http.port = 0
        s.resp.port = 0
        s.runtime = RuntimeSettings(loopCount: 2, pinThreads: false, preferLocalNUMANode: false)
        s.storage.commitMode = .periodic(milliseconds: 50)
        s.shutdownGraceMillis = 2000
        s.logLevel = "warning"
        configure(&s)
        return s
    }

    static func start(
        directory: String, wallClock: any WallClock = SystemWallClock(),
        configure: (inout ServerSettings) -> Void = { _ in }
    ) async throws -> TestServer {
        var logger = Logger(label: "kvd.test")
        logger.logLevel = .warning
        let server = try await NodeServer.start(
            settings: settings(directory: directory, configure: configure), wallClock: wallClock, logger: logger)
        let serving = Task { await server.run() }
        let clientLoop = EventLoop(settings: RuntimeSettings(loopCount: 1, pinThreads: false, preferLocalNUMANode: false))
        return TestServer(server: server, serving: serving, clientLoop: clientLoop, directory: directory)
    }

    /// Shuts the server down and waits (bounded) for `run()` to return.
    func stop() async {
        server.shutdown()
        await serving.value
        clientLoop.shutdown()
    }

    func http() async throws -> HTTPTestClient {
        HTTPTestClient(connection: try await TCPConnection.connect(host: "127.0.0.1", port: server.httpPort, on: clientLoop))
    }

    func resp() async throws -> RESPTestClient {
        RESPTestClient(connection: try await TCPConnection.connect(host: "127.0.0.1", port: server.respPort!, on: clientLoop))
    }
}

/// A response as the test client saw it.
struct TestResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: JSONValue] { (try? JSONValue.parse(body))?.objectValue ?? [:] }
}

/// A minimal HTTP/1.1 client over a transport connection, with a read deadline.
final class HTTPTestClient: @unchecked Sendable {
    let connection: TCPConnection
    var buffer: [UInt8] = []

    init(connection: TCPConnection) { self.connection = connection }

    func send(_ text: String) async throws { try await connection.write(Array(text.utf8)) }
    func send(bytes: [UInt8]) async throws { try await connection.write(bytes) }

    func request(_ method: String, _ target: String, body: String? = nil, headers: [String] = []) async throws -> TestResponse {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: test\r\n"
        for h in headers { text += h + "\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n\r\n" + body } else { text += "\r\n" }
        try await send(text)
        return try await readResponse()
    }

    /// Reads one response; throws `.closed` at end of stream.
    func readResponse(headOnly: Bool = false) async throws -> TestResponse {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                var headers: [String: String] = [:]
                for l in lines {
                    let parts = l.split(separator: ":", maxSplits: 1)
                    headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
                }
                let length = headOnly ? 0 : Int(headers["content-length"] ?? "0")!
                while buffer.count < end + 4 + length { try await fill() }
                let body = Array(buffer[(end + 4)..<(end + 4 + length)])
                buffer.removeFirst(end + 4 + length)
                return TestResponse(status: Int(statusLine[1])!, headers: headers, body: body)
            }
            try await fill()
        }
    }

    /// True when the server closed the connection (reads end of stream) within the timeout.
    func isClosedByServer() async -> Bool {
        do {
            let bytes = try await connection.read(timeout: .seconds(5))
            return bytes.isEmpty
        } catch {
            return true
        }
    }

    private func fill() async throws {
        let bytes = try await connection.read(timeout: .seconds(10))
        if bytes.isEmpty { throw TransportError.closed }
        buffer.append(contentsOf: bytes)
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i] == needle[0] && Array(buffer[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    func close() { connection.close() }
}

/// A RESP client that checks replies byte for byte.
final class RESPTestClient: @unchecked Sendable {
    let connection: TCPConnection
    init(connection: TCPConnection) { self.connection = connection }

    /// Sends `command` as a multibulk array.
    func send(_ args: String...) async throws { try await send(args: args) }

    func send(args: [String]) async throws {
        var bytes = Array("*\(args.count)\r\n".utf8)
        for a in args { bytes += Array("$\(a.utf8.count)\r\n\(a)\r\n".utf8) }
        try await connection.write(bytes)
    }

    func sendRaw(_ text: String) async throws { try await connection.write(Array(text.utf8)) }

    /// Reads exactly as many bytes as `expected` has and returns them as text.
    func read(_ expected: String) async throws -> String {
        let bytes = try await connection.read(exactly: expected.utf8.count, timeout: .seconds(10))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads one bulk-string reply and returns its contents.
    func readBulk() async throws -> String {
        var header: [UInt8] = []
        while header.suffix(2) != [13, 10] { header += try await connection.read(exactly: 1, timeout: .seconds(10)) }
        let length = Int(String(decoding: header.dropFirst().dropLast(2), as: UTF8.self))!
        let body = try await connection.read(exactly: length + 2, timeout: .seconds(10))
        return String(decoding: body.dropLast(2), as: UTF8.self)
    }

    func isClosedByServer() async -> Bool {
        do {
            return try await connection.read(timeout: .seconds(5)).isEmpty
        } catch {
            return true
        }
    }

    func close() { connection.close() }
}

/// A client-side loop for tests that talk to a server they did not start in-process.
enum EventLoopForTests {
    static func make() -> EventLoop {
        EventLoop(settings: RuntimeSettings(loopCount: 1, pinThreads: false, preferLocalNUMANode: false))
    }
}

enum TCPConnectionForTests {
    static func connect(port: Int, loop: EventLoop) async throws -> TCPConnection {
        try await TCPConnection.connect(host: "127.0.0.1", port: port, on: loop)
    }
}
