import KVCore
import Testing
@testable import KVServer

private func parseAll(_ text: String, settings: HTTPSettings = HTTPSettings(), chunk: Int = .max) -> [HTTPParser.Event] {
    var parser = HTTPParser(settings: settings)
    var events: [HTTPParser.Event] = []
    let bytes = Array(text.utf8)
    var i = 0
    repeat {
        let end = min(bytes.count, i + chunk)
        parser.append(bytes[i..<end])
        i = end
        while let e = parser.next() {
            events.append(e)
            if case .failure = e { return events }
        }
    } while i < bytes.count
    return events
}

private func requests(_ events: [HTTPParser.Event]) -> [HTTPRequest] {
    events.compactMap { if case .request(let r) = $0 { return r } else { return nil } }
}

private func failure(_ events: [HTTPParser.Event]) -> HTTPError? {
    for e in events { if case .failure(let f) = e { return f } }
    return nil
}

@Test func parsesASimpleGet() {
    let events = parseAll("GET /api/v1/item?key=a%20b HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
    let r = requests(events)
    #expect(r.count == 1)
    #expect(r[0].method == .get)
    #expect(r[0].path == "/api/v1/item")
    #expect(r[0].query == "key=a%20b")
    #expect(r[0].header("user-agent") == "t")
    #expect(r[0].keepAlive)
    #expect(r[0].body.isEmpty)
}

@Test func parsesABodyAndPipelinedRequestsByteByByte() {
    let text = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for chunk in [1, 2, 3, 7, 1000] {
        let r = requests(parseAll(text, chunk: chunk))
        #expect(r.count == 2)
        #expect(r[0].body == Array("hello".utf8))
        #expect(r[1].target == "/b")
        #expect(r[1].keepAlive == false)
    }
}

@Test func absoluteFormTargetsKeepTheirPath() {
    #expect(requests(parseAll("GET http://h:8080/api/v1/item?key=a HTTP/1.1\r\nHost: h\r\n\r\n"))[0].target == "/api/v1/item?key=a")
    #expect(requests(parseAll("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"))[0].target == "/")
}

@Test func keepAliveRules() {
    #expect(requests(parseAll("GET / HTTP/1.0\r\n\r\n"))[0].keepAlive == false)
    #expect(requests(parseAll("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))[0].keepAlive)
    #expect(requests(parseAll("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n"))[0].keepAlive == false)
}

@Test func acceptsBareLineFeeds() {
    let r = requests(parseAll("GET / HTTP/1.1\nHost: x\n\n"))
    #expect(r.count == 1)
}

@Test func limitsGiveTheRightErrors() {
    let small = HTTPSettings(maxRequestLineBytes: 32, maxHeaderBytes: 64, maxHeaderCount: 3, maxBodyBytes: 10)
    #expect(failure(parseAll("GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\n\r\n", settings: small)) == .requestLineTooLong(limit: 32))
    // Over the limit before any line end arrives: still refused, without waiting for more.
    #expect(failure(parseAll("GET /" + String(repeating: "a", count: 40), settings: small)) == .requestLineTooLong(limit: 32))
    #expect(failure(parseAll("GET / HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "b", count: 80) + "\r\n\r\n", settings: small)) == .headersTooLarge(limit: 64))
    #expect(failure(parseAll("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", settings: small)) == .tooManyHeaders(limit: 3))
    #expect(failure(parseAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", settings: small)) == .bodyTooLarge(limit: 10))
    #expect(HTTPError.requestLineTooLong(limit: 1).status.code == 414)
    #expect(HTTPError.headersTooLarge(limit: 1).status.code == 431)
    #expect(HTTPError.bodyTooLarge(limit: 1).status.code == 413)
}

@Test func malformedInputIsRefused() {
    #expect(failure(parseAll("GARBAGE\r\n\r\n")) != nil)
    #expect(failure(parseAll("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n")) == .malformedHeader("header line without ':'"))
    #expect(failure(parseAll("GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n")) == .malformedHeader("invalid header name"))
    #expect(failure(parseAll("GET / HTTP/1.1\r\n\r\n")) == .missingHost)
    #expect(failure(parseAll("GET / HTTP/2.0\r\n\r\n")) == .unsupportedVersion)
    #expect(failure(parseAll("GET noslash HTTP/1.1\r\n\r\n")) != nil)
    #expect(failure(parseAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")) == .badContentLength)
    #expect(failure(parseAll("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")) == .badContentLength)
    #expect(failure(parseAll("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")) == .unsupportedTransferEncoding)
    #expect(HTTPError.unsupportedTransferEncoding.status.code == 501)
}

@Test func expectContinueIsAnnounced() {
    var parser = HTTPParser()
    parser.append(Array("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
    #expect(parser.next() == .continueExpected)
    #expect(parser.next() == nil)
    parser.append(Array("abc".utf8))
    guard case .request(let r) = parser.next() else {
        Issue.record("expected a request")
        return
    }
    #expect(r.body == Array("abc".utf8))
}

@Test func afterAFailureTheParserStaysFailed() {
    var parser = HTTPParser()
    parser.append(Array("BAD\r\n".utf8))
    guard case .failure = parser.next() else {
        Issue.record("expected failure")
        return
    }
    parser.append(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
    guard case .failure = parser.next() else {
        Issue.record("expected failure to stick")
        return
    }
}

/// Random and mutated inputs: the parser never traps, always terminates, and
/// never buffers more than its limits allow.
@Test func fuzzedInputsNeverCrashOrHang() {
    var rng = SplitMix64(seed: 0x5EED)
    let settings = HTTPSettings(maxRequestLineBytes: 256, maxHeaderBytes: 512, maxHeaderCount: 16, maxBodyBytes: 256)
    let seeds = [
        "GET /api/v1/item?key=a HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/v1/item HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"key\":\"abc\"}",
        "DELETE /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ]
    let alphabet = Array(" \r\n:/?=%HTTP1.0GETPOST\t\u{7f}".utf8) + [0, 0xFF, 0xC3]
    for round in 0..<3000 {
        var bytes = Array(seeds[round % seeds.count].utf8)
        let mutations = Int(rng.next() % 8)
        for _ in 0..<mutations {
            let pos = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 4 {
            case 0 where !bytes.isEmpty: bytes[pos] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: pos)
            case 2 where !bytes.isEmpty: bytes.remove(at: pos)
            default: bytes.insert(contentsOf: repeatElement(UInt8(ascii: "A"), count: Int(rng.next() % 600)), at: pos)
            }
        }
        if round % 10 == 0 { bytes = (0..<Int(rng.next() % 2000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        var parser = HTTPParser(settings: settings)
        var i = 0
        var steps = 0
        while i < bytes.count {
            let n = 1 + Int(rng.next() % 64)
            let end = min(bytes.count, i + n)
            parser.append(bytes[i..<end])
            i = end
            var failed = false
            while let e = parser.next() {
                steps += 1
                if case .failure = e { failed = true; break }
                #expect(steps < 10_000)
            }
            if failed { break }
            #expect(parser.bufferedByteCount <= settings.maxRequestLineBytes + settings.maxHeaderBytes + settings.maxBodyBytes + 64)
        }
    }
}

@Test func httpDatesAreIMFFixdate() {
    #expect(HTTPDate.format(epochSeconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
    #expect(HTTPDate.format(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    #expect(HTTPDate.format(epochSeconds: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
    #expect(HTTPDate.format(epochSeconds: 4_102_444_799) == "Thu, 31 Dec 2099 23:59:59 GMT")
}
