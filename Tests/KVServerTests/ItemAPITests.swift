import Foundation
import KVCore
import Testing
@testable import KVServer

/// The seed JSON API over real sockets: every endpoint's success and error paths.
@Suite(.timeLimit(.minutes(1)))
struct ItemAPITests {
    @Test func putGetDeleteRoundTrip() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()

        let put = try await c.request("POST", "/api/v1/item", body: #"{"key":"user:123","value":"aGVsbG8gd29ybGQ="}"#)
        #expect(put.status == 201)
        #expect(put.headers["content-type"] == "application/json")
        #expect(put.json["key"] == .string("user:123"))
        guard case .integer(let ts)? = put.json["timestamp"] else {
            Issue.record("no timestamp in \(put.text)")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(abs(ts - now) < 60_000, "timestamp is wall-clock milliseconds")

        for consistency in ["", "&consistency=eventual", "&consistency=strong"] {
            let get = try await c.request("GET", "/api/v1/item?key=user%3A123" + consistency)
            #expect(get.status == 200)
            #expect(get.json["key"] == .string("user:123"))
            #expect(get.json["value"] == .string("aGVsbG8gd29ybGQ="))
            #expect(get.json["timestamp"] == .integer(ts))
        }

        let head = try await { () async throws -> TestResponse in
            try await c.send("HEAD /api/v1/item?key=user:123 HTTP/1.1\r\nHost: t\r\n\r\n")
            return try await c.readResponse(headOnly: true)
        }()
        #expect(head.status == 200)

        let del = try await c.request("DELETE", "/api/v1/item?key=user:123")
        #expect(del.status == 200)
        #expect(del.text == #"{"deleted":true}"#)
        let gone = try await c.request("GET", "/api/v1/item?key=user:123")
        #expect(gone.status == 404)
        #expect(gone.json["code"] == .string("not_found"))

        // A later write wins over the delete.
        let again = try await c.request("PUT", "/api/v1/item", body: #"{"key":"user:123","value":""}"#)
        #expect(again.status == 201)
        let empty = try await c.request("GET", "/api/v1/item?key=user:123")
        #expect(empty.json["value"] == .string(""))
        c.close()
        await t.stop()
    }

    @Test func ttlExpiresWithTheClock() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let clock = TestWallClock()
        let t = try await TestServer.start(directory: dir.path, wallClock: clock)
        let c = try await t.http()
        #expect(try await c.request("POST", "/api/v1/item", body: #"{"key":"s","value":"eA==","ttl":10}"#).status == 201)
        #expect(try await c.request("GET", "/api/v1/item?key=s").status == 200)
        clock.advance(byMillis: 9_999)
        #expect(try await c.request("GET", "/api/v1/item?key=s").status == 200)
        clock.advance(byMillis: 1)
        #expect(try await c.request("GET", "/api/v1/item?key=s").status == 404)
        c.close()
        await t.stop()
    }

    @Test func badInputIs400WithACode() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        let cases: [(String, String, String?, String)] = [
            ("POST", "/api/v1/item", "{not json", "bad_json"),
            ("POST", "/api/v1/item", "[1]", "bad_json"),
            ("POST", "/api/v1/item", #"{"value":"eA=="}"#, "missing_key"),
            ("POST", "/api/v1/item", #"{"key":"","value":"eA=="}"#, "missing_key"),
            ("POST", "/api/v1/item", #"{"key":5,"value":"eA=="}"#, "missing_key"),
            ("POST", "/api/v1/item", #"{"key":"k"}"#, "missing_value"),
            ("POST", "/api/v1/item", #"{"key":"k","value":"not base64!"}"#, "bad_base64"),
            ("POST", "/api/v1/item", #"{"key":"k","value":"eA==","ttl":-1}"#, "bad_ttl"),
            ("POST", "/api/v1/item", #"{"key":"k","value":"eA==","ttl":1.5}"#, "bad_ttl"),
            ("POST", "/api/v1/item", #"{"key":"k","value":"eA==","ttl":"60"}"#, "bad_ttl"),
            ("GET", "/api/v1/item", nil, "missing_key"),
            ("GET", "/api/v1/item?key=", nil, "missing_key"),
            ("GET", "/api/v1/item?key=k&consistency=bogus", nil, "bad_consistency"),
            ("GET", "/api/v1/item?key=%zz", nil, "bad_query"),
            ("DELETE", "/api/v1/item", nil, "missing_key"),
        ]
        for (method, target, body, code) in cases {
            let r = try await c.request(method, target, body: body)
            #expect(r.status == 400, "\(method) \(target) \(body ?? "")")
            #expect(r.json["code"] == .string(code), "\(method) \(target) \(body ?? ""): \(r.text)")
            if case .string(let message)? = r.json["error"] { #expect(!message.isEmpty) } else { Issue.record("no error message") }
        }
        c.close()
        await t.stop()
    }

    @Test func sizeLimitsAre413() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path) { $0.limits = Limits(maxKeyBytes: 8, maxValueBytes: 4) }
        let c = try await t.http()
        let bigKey = try await c.request("POST", "/api/v1/item", body: #"{"key":"123456789","value":"eA=="}"#)
        #expect(bigKey.status == 413)
        #expect(bigKey.json["code"] == .string("key_too_large"))
        let bigValue = try await c.request("POST", "/api/v1/item", body: #"{"key":"k","value":"aGVsbG8="}"#)
        #expect(bigValue.status == 413)
        #expect(bigValue.json["code"] == .string("value_too_large"))
        let getBig = try await c.request("GET", "/api/v1/item?key=123456789")
        #expect(getBig.status == 413)
        c.close()
        await t.stop()
    }

    @Test func routesAndMethods() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        let c = try await t.http()
        let patch = try await c.request("PATCH", "/api/v1/item?key=k")
        #expect(patch.status == 405)
        #expect(patch.headers["allow"] == "GET, HEAD, POST, PUT, DELETE")
        #expect(patch.json["code"] == .string("method_not_allowed"))
        #expect(try await c.request("POST", "/api/v1/health", body: "").status == 405)
        let missing = try await c.request("GET", "/nope")
        #expect(missing.status == 404)
        #expect(missing.json["code"] == .string("no_such_route"))
        let health = try await c.request("GET", "/api/v1/health")
        #expect(health.status == 200)
        #expect(health.json["status"] == .string("ok"))
        #expect(health.json["shards"] == .integer(2))
        c.close()
        await t.stop()
    }

    @Test func aOneMebibyteValueRoundTrips() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let t = try await TestServer.start(directory: dir.path)
        var rng = SplitMix64(seed: 3)
        let value = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let encoded = String(decoding: Base64.encode(value), as: UTF8.self)
        let c = try await t.http()
        #expect(try await c.request("POST", "/api/v1/item", body: #"{"key":"big","value":"\#(encoded)"}"#).status == 201)
        let get = try await c.request("GET", "/api/v1/item?key=big")
        #expect(get.json["value"] == .string(encoded))
        c.close()
        let r = try await t.resp()
        try await r.send("GET", "big")
        let expected = Array("$1048576\r\n".utf8) + value + [13, 10]
        #expect(try await r.connection.read(exactly: expected.count, timeout: .seconds(10)) == expected)
        try await r.send("STRLEN", "big")
        #expect(try await r.read("-ERR unknown command 'STRLEN', with args beginning with: 'big' \r\n").hasPrefix("-ERR"))
        r.close()
        await t.stop()
    }
}
