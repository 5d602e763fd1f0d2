import Foundation
import KVCore
import KVTransport
import Testing
@testable import KVServer

/// HTTP/1.1 behaviour of the server over real sockets: keep-alive, pipelining,
/// limits, malformed input, many connections, clients that vanish, restarts.
@Suite(.timeLimit(.minutes(1)))
struct HTTPServerTests {
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        var batch = ""
        for i in 0..<5 {
            let body = #"{"key":"p\#(i)","value":"\#(String(decoding: Base64.encode(Array("v\(i)".utf8)), as: UTF8.self))"}"#
            batch += "POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        for i in 0..<5 { batch += "GET /api/v1/item?key=p\(i) HTTP/1.1\r\nHost: t\r\n\r\n" }
        batch += "GET /api/v1/item?key=missing HTTP/1.1\r\nHost: t\r\n\r\n"
        try await c.send(batch)
        for i in 0..<5 {
            let r = try await c.readResponse()
            #expect(r.status == 201)
            #expect(r.json["key"] == .string("p\(i)"))
        }
        for i in 0..<5 {
            let r = try await c.readResponse()
            #expect(r.status == 200)
            #expect(r.json["value"] == .string(String(decoding: Base64.encode(Array("v\(i)".utf8)), as: UTF8.self)))
        }
        #expect(try await c.readResponse().status == 404)
        c.close()
        await t.stop()
    }

    @Test func keepAliveAndClose() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        for _ in 0..<3 { #expect(try await c.request("GET", "/api/v1/health").status == 200) }
        #expect(try await c.request("GET", "/api/v1/health").headers["date"]?.hasSuffix(" GMT") == true)
        let last = try await c.request("GET", "/api/v1/health", headers: ["Connection: close"])
        #expect(last.headers["connection"] == "close")
        #expect(await c.isClosedByServer())

        let old = try await t.http()
        try await old.send("GET /api/v1/health HTTP/1.0\r\n\r\n")
        #expect(try await old.readResponse().status == 200)
        #expect(await old.isClosedByServer())

        let kept = try await t.http()
        try await kept.send("GET /api/v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try await kept.readResponse().headers["connection"] == nil)
        #expect(try await kept.request("GET", "/api/v1/health").status == 200)
        kept.close()
        await t.stop()
    }

    @Test func oversizedAndMalformedRequests() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path) {
            $0.http.maxRequestLineBytes = 128
            $0.http.maxHeaderBytes = 512
            $0.http.maxBodyBytes = 1024
        }
        let cases: [(String, Int, String)] = [
            ("GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414, "request_line_too_long"),
            ("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 600) + "\r\n\r\n", 431, "headers_too_large"),
            ("POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413, "body_too_large"),
            ("NOT HTTP AT ALL\r\n\r\n", 400, "malformed_request_line"),
            ("GET / HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n", 400, "malformed_header"),
            ("GET / HTTP/1.1\r\n\r\n", 400, "missing_host"),
            ("POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400, "bad_content_length"),
            ("POST /api/v1/item HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501, "transfer_encoding_not_supported"),
            ("GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505, "http_version_not_supported"),
            ("GET / HTTP/1.1\r\nHost: t\r\n\u{01}\u{02}\u{03}\r\n\r\n", 400, "malformed_header"),
        ]
        for (raw, status, code) in cases {
            let c = try await t.http()
            try await c.send(raw)
            let r = try await c.readResponse()
            #expect(r.status == status, "\(raw.prefix(40))")
            #expect(r.json["code"] == .string(code), "\(raw.prefix(40)): \(r.text)")
            #expect(r.headers["connection"] == "close")
            #expect(await c.isClosedByServer())
        }
        // The server still serves after all that.
        let c = try await t.http()
        #expect(try await c.request("GET", "/api/v1/health").status == 200)
        c.close()
        await t.stop()
    }

    @Test func expectContinueGetsAnInterimResponse() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        let body = #"{"key":"e","value":"eA=="}"#
        try await c.send("POST /api/v1/item HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        #expect(try await c.readResponse().status == 100)
        try await c.send(body)
        #expect(try await c.readResponse().status == 201)
        c.close()
        await t.stop()
    }

    @Test func randomGarbageNeverKillsTheServer() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        var rng = SplitMix64(seed: 99)
        for _ in 0..<20 {
            let c = try await t.http()
            let bytes = (0..<Int(rng.next() % 3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try await c.send(bytes: bytes + Array("\r\n\r\n".utf8))
            // Either a 4xx/5xx answer and a close, or (for a prefix that is still a valid
            // partial request) nothing; never a crash.
            c.close()
        }
        let c = try await t.http()
        #expect(try await c.request("GET", "/api/v1/health").status == 200)
        c.close()
        await t.stop()
    }

    @Test func manyConcurrentConnections() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let c = try await t.http()
                    defer { c.close() }
                    let value = String(decoding: Base64.encode(Array("value-\(i)".utf8)), as: UTF8.self)
                    let put = try await c.request("POST", "/api/v1/item", body: #"{"key":"c\#(i)","value":"\#(value)"}"#)
                    let get = try await c.request("GET", "/api/v1/item?key=c\(i)")
                    return put.status == 201 && get.json["value"] == .string(value) ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(failures == 0)
        await t.stop()
    }

    @Test func clientDisconnectingMidRequestIsHarmless() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        for partial in [
            "POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"key\":",
            "GET /api/v1/it",
            "GET /api/v1/item?key=a HTTP/1.1\r\nHost: t\r\n",
        ] {
            let c = try await t.http()
            try await c.send(partial)
            c.connection.abort()
        }
        // Give the server a moment to notice, bounded.
        var open = Int.max
        for _ in 0..<100 {
            open = t.server.counters.connectedClients.load(ordering: .relaxed)
            if open == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(open == 0)
        let c = try await t.http()
        #expect(try await c.request("GET", "/api/v1/health").status == 200)
        c.close()
        await t.stop()
    }

    @Test func restartKeepsTheData() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let first = try await TestServer.start(directory: dir.path)
        let c = try await first.http()
        for i in 0..<50 {
            #expect(try await c.request("POST", "/api/v1/item", body: #"{"key":"r\#(i)","value":"eA=="}"#).status == 201)
        }
        #expect(try await c.request("DELETE", "/api/v1/item?key=r7").status == 200)
        c.close()
        await first.stop()

        let second = try await TestServer.start(directory: dir.path)
        let d = try await second.http()
        for i in 0..<50 {
            let r = try await d.request("GET", "/api/v1/item?key=r\(i)")
            #expect(r.status == (i == 7 ? 404 : 200), "key r\(i)")
        }
        d.close()
        await second.stop()
    }

    @Test func shutdownFinishesTheRequestInHand() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let idle = try await t.http()
        #expect(try await idle.request("GET", "/api/v1/health").status == 200)
        let busy = try await t.http()
        // Half a request is in flight when shutdown begins.
        let body = #"{"key":"late","value":"eA=="}"#
        try await busy.send("POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        // Wait (bounded) until the server has the partial request in hand, however loaded the machine is.
        for _ in 0..<500 where t.server.tracker.busyCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(t.server.tracker.busyCount == 1)
        t.server.shutdown()
        #expect(await idle.isClosedByServer())
        try await busy.send(body)
        let r = try await busy.readResponse()
        #expect(r.status == 201)
        #expect(r.headers["connection"] == "close")
        await t.serving.value
        t.clientLoop.shutdown()
    }

    @Test func requestSplitAcrossWritesIsReassembled() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        let body = #"{"key":"split","value":"c3BsaXQ="}"#
        let raw = "POST /api/v1/item HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let bytes = Array(raw.utf8)
        for part in [bytes[0..<7], bytes[7..<30], bytes[30..<(bytes.count - 3)], bytes[(bytes.count - 3)...]] {
            try await c.send(bytes: Array(part))
            try await Task.sleep(for: .milliseconds(15))
        }
        #expect(try await c.readResponse().status == 201)
        #expect(try await c.request("GET", "/api/v1/item?key=split").json["value"] == .string("c3BsaXQ="))
        c.close()
        await t.stop()
    }

    @Test func aStalledRequestTimesOut() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path) { $0.http.requestTimeoutMillis = 200 }
        let c = try await t.http()
        try await c.send("GET /api/v1/health HTTP/1.1\r\nHost: t\r\n")
        let started = ContinuousClock.now
        #expect(await c.isClosedByServer())
        #expect(ContinuousClock.now - started < .seconds(4))
        // An idle keep-alive connection is not subject to the request timeout.
        let idle = try await t.http()
        #expect(try await idle.request("GET", "/api/v1/health").status == 200)
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await idle.request("GET", "/api/v1/health").status == 200)
        idle.close()
        await t.stop()
    }

    @Test func aWallClockGoingBackwardsAcrossARestartDoesNotLoseWrites() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let clock = TestWallClock(1_800_000_000_000)
        let first = try await TestServer.start(directory: dir.path, wallClock: clock)
        let c = try await first.http()
        #expect(try await c.request("POST", "/api/v1/item", body: #"{"key":"k","value":"b2xk"}"#).status == 201)
        c.close()
        await first.stop()

        let earlier = TestWallClock(1_800_000_000_000 - 3_600_000)
        let second = try await TestServer.start(directory: dir.path, wallClock: earlier)
        let d = try await second.http()
        let put = try await d.request("POST", "/api/v1/item", body: #"{"key":"k","value":"bmV3"}"#)
        #expect(put.json["timestamp"] == .integer(1_800_000_000_000))
        #expect(try await d.request("GET", "/api/v1/item?key=k").json["value"] == .string("bmV3"))
        d.close()
        await second.stop()
    }
}
