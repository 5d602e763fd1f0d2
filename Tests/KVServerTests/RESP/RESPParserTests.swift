import KVCore
import Testing
@testable import KVServer

private func commands(_ text: String, settings: RESPSettings = RESPSettings(), chunk: Int = .max) -> [RESPParser.Event] {
    var parser = RESPParser(settings: settings)
    var events: [RESPParser.Event] = []
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

private func args(_ strings: String...) -> RESPParser.Event {
    .command(strings.map { Array($0.utf8) })
}

@Test func parsesMultibulkAndPipelines() {
    let text = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n"
    for chunk in [1, 2, 5, 13, 1000] {
        #expect(commands(text, chunk: chunk) == [args("SET", "k", "hello"), args("GET", "k"), args("PING")])
    }
}

@Test func bulkStringsMayHoldAnyBytes() {
    var parser = RESPParser()
    parser.append([UInt8]("*2\r\n$3\r\nGET\r\n$4\r\n".utf8) + [0, 13, 10, 255] + [13, 10])
    #expect(parser.next() == .command([Array("GET".utf8), [0, 13, 10, 255]]))
}

@Test func parsesInlineCommands() {
    #expect(commands("PING\r\n") == [args("PING")])
    #expect(commands("SET  k   v\n") == [args("SET", "k", "v")])
    #expect(commands("SET k \"a b\\n\\x41\"\r\n") == [args("SET", "k", "a b\nA")])
    #expect(commands("SET k 'it\\'s'\r\n") == [args("SET", "k", "it's")])
    #expect(commands("\r\n\r\nPING\r\n") == [args("PING")])
    #expect(commands("SET k \"open\r\n") == [.failure("unbalanced quotes in request")])
}

@Test func protocolErrors() {
    #expect(commands("*x\r\n") == [.failure("invalid multibulk length")])
    #expect(commands("*1\r\n:1\r\n") == [.failure("expected '$', got ':'")])
    #expect(commands("*1\r\n$-5\r\n") == [.failure("invalid bulk length")])
    #expect(commands("*1\r\n$3\r\nabcXY") == [.failure("bulk string not followed by CRLF")])
    let small = RESPSettings(maxArguments: 2, maxBulkBytes: 4, maxInlineBytes: 8)
    #expect(commands("*3\r\n", settings: small) == [.failure("invalid multibulk length")])
    #expect(commands("*1\r\n$5\r\n", settings: small) == [.failure("invalid bulk length")])
    #expect(commands("GET 0123456789", settings: small) == [.failure("too big inline request")])
}

@Test func fuzzedRESPNeverCrashes() {
    var rng = SplitMix64(seed: 42)
    let seed = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nGET k\r\n".utf8)
    let settings = RESPSettings(maxArguments: 8, maxBulkBytes: 64, maxInlineBytes: 64, maxCommandBytes: 256)
    for _ in 0..<3000 {
        var bytes = seed
        for _ in 0..<Int(rng.next() % 6) {
            let pos = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 3 {
            case 0: bytes[pos] = Array("*$\r\n-0123456789\" '".utf8)[Int(rng.next() % 18)]
            case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: pos)
            default: if bytes.count > 1 { bytes.remove(at: pos) }
            }
        }
        var parser = RESPParser(settings: settings)
        var i = 0
        outer: while i < bytes.count {
            let end = min(bytes.count, i + 1 + Int(rng.next() % 16))
            parser.append(bytes[i..<end])
            i = end
            var steps = 0
            while let e = parser.next() {
                steps += 1
                #expect(steps < 1000)
                if case .failure = e { break outer }
            }
            #expect(parser.bufferedByteCount <= settings.maxCommandBytes + 64)
        }
    }
}

@Test func aLargeCommandArrivingInPiecesIsParsedOnce() {
    var text = "*2001\r\n$4\r\nMSET\r\n"
    var expected: [[UInt8]] = [Array("MSET".utf8)]
    for i in 0..<1000 {
        let k = "key\(i)", v = String(repeating: "v", count: i % 50)
        text += "$\(k.utf8.count)\r\n\(k)\r\n$\(v.utf8.count)\r\n\(v)\r\n"
        expected += [Array(k.utf8), Array(v.utf8)]
    }
    text += "*1\r\n$4\r\nPING\r\n"
    for chunk in [1, 7, 100, 4096] {
        #expect(commands(text, chunk: chunk) == [.command(expected), args("PING")])
    }
}

/// `nextInPlace` hands out views into the buffer; commands that arrive in pieces while
/// the buffer compacts (the consumed front is dropped past 4 KiB) still come out whole.
@Test func inPlaceArgumentsSurviveCompactionAndPartialArrivals() {
    var text = ""
    for i in 0..<200 { text += "*3\r\n$3\r\nSET\r\n$\(String(i).count + 1)\r\nk\(i)\r\n$100\r\n\(String(repeating: Character(String(i % 10)), count: 100))\r\n" }
    let bytes = Array(text.utf8)
    for chunk in [7, 61, 4099] {
        var parser = RESPParser()
        var seen = 0
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            parser.append(bytes[i..<end])
            i = end
            while let event = parser.nextInPlace({ args in (args.count, args.array(1), args[2].allSatisfy { $0 == args[2].first }) }) {
                guard case .command(let (count, key, uniform)) = event else {
                    Issue.record("unexpected \(event)")
                    return
                }
                #expect(count == 3 && key == Array("k\(seen)".utf8) && uniform, "chunk \(chunk), command \(seen)")
                seen += 1
            }
        }
        #expect(seen == 200, "chunk \(chunk)")
    }
}
