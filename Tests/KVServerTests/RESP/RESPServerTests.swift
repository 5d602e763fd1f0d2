import Foundation
import KVCore
import Testing
@testable import KVServer

/// RESP2 over real sockets, checked byte for byte.
@Suite(.timeLimit(.minutes(1)))
struct RESPServerTests {
    @Test func everyCommandByteForByte() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let clock = TestWallClock()
        let t = try await TestServer.start(directory: dir.path, wallClock: clock)
        let c = try await t.resp()

        try await c.send("PING")
        #expect(try await c.read("+PONG\r\n") == "+PONG\r\n")
        try await c.send("ping", "hi")
        #expect(try await c.read("$2\r\nhi\r\n") == "$2\r\nhi\r\n")
        try await c.send("ECHO", "x y")
        #expect(try await c.read("$3\r\nx y\r\n") == "$3\r\nx y\r\n")

        try await c.send("SET", "k", "hello")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        try await c.send("GET", "k")
        #expect(try await c.read("$5\r\nhello\r\n") == "$5\r\nhello\r\n")
        try await c.send("GET", "nokey")
        #expect(try await c.read("$-1\r\n") == "$-1\r\n")

        try await c.send("TTL", "k")
        #expect(try await c.read(":-1\r\n") == ":-1\r\n")
        try await c.send("TTL", "nokey")
        #expect(try await c.read(":-2\r\n") == ":-2\r\n")
        try await c.send("SET", "e", "v", "EX", "100")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        try await c.send("TTL", "e")
        #expect(try await c.read(":100\r\n") == ":100\r\n")
        try await c.send("PTTL", "e")
        #expect(try await c.read(":100000\r\n") == ":100000\r\n")
        try await c.send("SET", "p", "v", "px", "1500")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        clock.advance(byMillis: 1000)
        try await c.send("PTTL", "p")
        #expect(try await c.read(":500\r\n") == ":500\r\n")
        clock.advance(byMillis: 500)
        try await c.send("GET", "p")
        #expect(try await c.read("$-1\r\n") == "$-1\r\n")
        try await c.send("TTL", "p")
        #expect(try await c.read(":-2\r\n") == ":-2\r\n")

        try await c.send("MSET", "a", "1", "b", "22")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        try await c.send("MGET", "a", "nokey", "b")
        #expect(try await c.read("*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n") == "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n")
        try await c.send("EXISTS", "a", "b", "nokey", "a")
        #expect(try await c.read(":3\r\n") == ":3\r\n")
        try await c.send("DEL", "a", "nokey", "b")
        #expect(try await c.read(":2\r\n") == ":2\r\n")
        try await c.send("EXISTS", "a")
        #expect(try await c.read(":0\r\n") == ":0\r\n")

        try await c.send("SELECT", "0")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        try await c.send("SELECT", "3")
        #expect(try await c.read("-ERR DB index is out of range\r\n") == "-ERR DB index is out of range\r\n")

        try await c.send("COMMAND", "COUNT")
        let count = ":\(RESPCommand.allCases.count)\r\n"
        #expect(try await c.read(count) == count)
        try await c.send("COMMAND", "DOCS")
        #expect(try await c.read("*0\r\n") == "*0\r\n")
        try await c.send("COMMAND", "INFO", "get")
        let info = "*1\r\n*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
        #expect(try await c.read(info) == info)

        try await c.send("INFO")
        let text = try await c.readBulk()
        for section in ["# Server", "# Clients", "# Stats", "# Keyspace", "redis_version:", "connected_clients:1"] {
            #expect(text.contains(section), "INFO lacks \(section)")
        }
        try await c.send("INFO", "server")
        let server = try await c.readBulk()
        #expect(server.contains("# Server") && !server.contains("# Stats"))

        try await c.send("FLUSHALL", "now")
        let unknown = "-ERR unknown command 'FLUSHALL', with args beginning with: 'now' \r\n"
        #expect(try await c.read(unknown) == unknown)
        try await c.send("GET")
        let arity = "-ERR wrong number of arguments for 'get' command\r\n"
        #expect(try await c.read(arity) == arity)
        try await c.send("SET", "k", "v", "NX")
        #expect(try await c.read("-ERR syntax error\r\n") == "-ERR syntax error\r\n")
        try await c.send("SET", "k", "v", "EX", "0")
        let badExpire = "-ERR invalid expire time in 'set' command\r\n"
        #expect(try await c.read(badExpire) == badExpire)
        try await c.send("SET", "", "v")
        #expect(try await c.read("-ERR key must not be empty\r\n") == "-ERR key must not be empty\r\n")

        try await c.send("QUIT")
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        #expect(await c.isClosedByServer())
        await t.stop()
    }

    @Test func inlineAndPipelinedCommands() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.resp()
        try await c.sendRaw("SET greeting \"hello world\"\r\nGET greeting\r\nPING\r\n")
        let expected = "+OK\r\n$11\r\nhello world\r\n+PONG\r\n"
        #expect(try await c.read(expected) == expected)

        var batch = ""
        for i in 0..<100 { batch += "*3\r\n$3\r\nSET\r\n$\(String(i).count + 1)\r\nk\(i)\r\n$\(String(i).count)\r\n\(i)\r\n" }
        for i in 0..<100 { batch += "*2\r\n$3\r\nGET\r\n$\(String(i).count + 1)\r\nk\(i)\r\n" }
        try await c.sendRaw(batch)
        var replies = String(repeating: "+OK\r\n", count: 100)
        for i in 0..<100 { replies += "$\(String(i).count)\r\n\(i)\r\n" }
        #expect(try await c.read(replies) == replies)
        c.close()
        await t.stop()
    }

    /// Commands that wait for the service (DEL, EXISTS, MGET, TTL, INFO) between ones the
    /// loop answers in place, pipelined in one write, are answered in order, and the
    /// connection goes back to in-place serving after each.
    @Test func waitingAndInPlaceCommandsAnswerInOrder() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.resp()
        for _ in 0..<3 {
            try await c.sendRaw("SET a 1\r\nDEL a\r\nGET a\r\nSET b 2\r\nEXISTS b a\r\nMGET a b\r\nPING\r\nTTL b\r\nINFO keyspace\r\nGET b\r\n")
            let expected = "+OK\r\n:1\r\n$-1\r\n+OK\r\n:1\r\n*2\r\n$-1\r\n$1\r\n2\r\n+PONG\r\n:-1\r\n"
            #expect(try await c.read(expected) == expected)
            #expect(try await c.readBulk().hasPrefix("# Keyspace"))
            #expect(try await c.read("$1\r\n2\r\n") == "$1\r\n2\r\n")
        }
        c.close()
        await t.stop()
    }

    /// Replies far beyond the write buffer limit, from one pipelined write, all arrive
    /// intact: serving pauses while the buffer is full and resumes as it drains.
    @Test func pipelinedRepliesBeyondTheWriteBufferAllArrive() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path) { $0.transport.writeBufferLimitBytes = 16 << 10 }
        let c = try await t.resp()
        let value = String(repeating: "v", count: 50_000)
        try await c.send("SET", "big", value)
        #expect(try await c.read("+OK\r\n") == "+OK\r\n")
        try await c.sendRaw(String(repeating: "GET big\r\n", count: 60) + "PING\r\n")
        for _ in 0..<60 { #expect(try await c.readBulk() == value) }
        #expect(try await c.read("+PONG\r\n") == "+PONG\r\n")
        c.close()
        await t.stop()
    }

    @Test func protocolErrorClosesTheConnection() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.resp()
        try await c.sendRaw("*2\r\n$3\r\nGET\r\n:1\r\n")
        let reply = "-ERR Protocol error: expected '$', got ':'\r\n"
        #expect(try await c.read(reply) == reply)
        #expect(await c.isClosedByServer())
        let d = try await t.resp()
        try await d.sendRaw("*1\r\n$99999999\r\n")
        let tooBig = "-ERR Protocol error: invalid bulk length\r\n"
        #expect(try await d.read(tooBig) == tooBig)
        #expect(await d.isClosedByServer())
        await t.stop()
    }

    @Test func valuesWrittenOverHTTPReadOverRESP() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let h = try await t.http()
        #expect(try await h.request("POST", "/api/v1/item", body: #"{"key":"both","value":"AAEC/w=="}"#).status == 201)
        let r = try await t.resp()
        try await r.send("GET", "both")
        let bytes = try await r.connection.read(exactly: 10, timeout: .seconds(10))
        #expect(bytes == Array("$4\r\n".utf8) + [0, 1, 2, 255] + [13, 10])
        try await r.send("SET", "back", "text")
        #expect(try await r.read("+OK\r\n") == "+OK\r\n")
        let get = try await h.request("GET", "/api/v1/item?key=back")
        #expect(get.json["value"] == .string("dGV4dA=="))
        h.close()
        r.close()
        await t.stop()
    }

    @Test func randomGarbageNeverKillsTheServer() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        var rng = SplitMix64(seed: 1234)
        let pieces = Array("*$\r\n-:+0123456789 \"'GETSETPING".utf8)
        for round in 0..<20 {
            let c = try await t.resp()
            let bytes = (0..<Int(rng.next() % 2000)).map { _ in
                round % 2 == 0 ? pieces[Int(rng.next() % UInt64(pieces.count))] : UInt8(truncatingIfNeeded: rng.next())
            }
            try await c.connection.write(bytes)
            c.close()
        }
        let c = try await t.resp()
        try await c.send("PING")
        #expect(try await c.read("+PONG\r\n") == "+PONG\r\n")
        try await c.send("INFO", "stats")
        #expect(try await c.readBulk().contains("total_commands_processed:"))
        c.close()
        await t.stop()
    }

    /// Drives the real redis-cli (Debian redis-tools) when it is installed.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-cli")))
    func redisCLI() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let port = String(t.server.respPort!)
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "SET", "cli", "works"]) == "OK\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "GET", "cli"]) == "works\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "SET", "t", "v", "EX", "50"]) == "OK\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "TTL", "t"]) == "50\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "DEL", "cli", "t"]) == "2\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "EXISTS", "cli"]) == "0\n")
        #expect(try await runProcess("/usr/bin/redis-cli", ["-p", port, "PING"]) == "PONG\n")
        let bogus = try await runProcess("/usr/bin/redis-cli", ["-p", port, "BOGUS"])
        #expect(bogus.contains("ERR unknown command 'BOGUS'"))
        // Interactive-style session through stdin: redis-cli first asks COMMAND DOCS.
        let piped = try await runProcess("/usr/bin/redis-cli", ["-p", port], stdin: "SET a 1\nGET a\n")
        #expect(piped == "OK\n1\n")
        await t.stop()
    }
}

/// Runs a program to completion (bounded by the suite's time limit) and returns its stdout.
func runProcess(_ path: String, _ arguments: [String], stdin: String? = nil) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let input = Pipe()
    process.standardInput = input
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            continuation.resume(throwing: error)
            return
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    return String(decoding: data, as: UTF8.self)
}
