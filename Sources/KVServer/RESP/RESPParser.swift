/// An incremental RESP2 request parser: bytes in, commands out.
///
/// A pure value type. Accepts the two request forms Redis accepts: multibulk
/// arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what client
/// libraries and redis-cli send) and inline commands (`GET k\r\n`, what telnet
/// sends; double-quoted arguments with `\n`, `\"`, `\xHH` escapes as in Redis).
/// Pipelined commands come out one per `next()` call, in order. A partially
/// received command stays buffered until it is complete; every size is checked
/// against `RESPSettings` before anything is buffered past it. After a protocol
/// error the parser stays failed (Redis answers the error and closes).
///
/// Cost: each argument is copied once out of the receive buffer.
public struct RESPParser: Sendable {
    /// What `next()` found.
    public enum Event: Sendable, Equatable {
        /// A command: its name and arguments, as bytes.
        case command([[UInt8]])
        /// A protocol error; reply `-ERR Protocol error: <message>` and close.
        case failure(String)
    }

    /// The limits checked while parsing.
    public let settings: RESPSettings
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: String?
    /// A multibulk command whose arguments are still arriving: what is parsed so far,
    /// so a large command is scanned once, not once per read.
    private var partial: (count: Int, args: [[UInt8]], offset: Int)?

    public init(settings: RESPSettings = RESPSettings()) {
        self.settings = settings
    }

    /// Bytes received but not yet returned as commands.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Appends received bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes from raw memory.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    /// The next complete command, a protocol error, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        while true {
            if let failure { return .failure(failure) }
            guard start < buffer.count else { return nil }
            let result = partial != nil || buffer[start] == UInt8(ascii: "*") ? parseMultibulk() : parseInline()
            switch result {
            case .needMore: return nil
            case .empty(let consumed): start += consumed; continue
            case .command(let args, let consumed):
                start += consumed
                return .command(args)
            case .error(let message):
                failure = message
                return .failure(message)
            }
        }
    }

    private enum Step {
        case needMore
        case empty(consumed: Int)
        case command([[UInt8]], consumed: Int)
        case error(String)
    }

    /// Index of the CR of the next CRLF at or after `from`, or nil.
    private func lineEnd(from: Int, limit: Int) -> Int?? {
        var i = from
        let end = min(buffer.count, from + limit + 2)
        while i < end {
            if buffer[i] == 10 { return .some(i > from && buffer[i - 1] == 13 ? i - 1 : i) }
            i += 1
        }
        if buffer.count - from > limit + 1 { return .some(nil) }
        return nil
    }

    private mutating func parseMultibulk() -> Step {
        var count: Int
        var args: [[UInt8]]
        var p: Int
        if let resumed = partial {
            (count, args, p) = (resumed.count, resumed.args, start + resumed.offset)
            partial = nil
        } else {
            p = start + 1
            guard let headerEnd = lineEnd(from: p, limit: 20) else { return .needMore }
            guard let he = headerEnd, let n = parseDecimal(buffer[p..<he]), n <= settings.maxArguments else {
                return .error("invalid multibulk length")
            }
            p = he + (buffer[he] == 13 ? 2 : 1)
            if n <= 0 { return .empty(consumed: p - start) }
            count = Int(n)
            args = []
            args.reserveCapacity(min(count, 64))
        }
        while args.count < count {
            guard p < buffer.count else {
                partial = (count, args, p - start)
                return .needMore
            }
            guard buffer[p] == UInt8(ascii: "$") else {
                return .error("expected '$', got '\(Character(Unicode.Scalar(buffer[p])))'")
            }
            guard let lenEnd = lineEnd(from: p + 1, limit: 20) else {
                partial = (count, args, p - start)
                return .needMore
            }
            guard let le = lenEnd, let len = parseDecimal(buffer[(p + 1)..<le]), len >= 0, len <= settings.maxBulkBytes else {
                return .error("invalid bulk length")
            }
            let dataStart = le + (buffer[le] == 13 ? 2 : 1)
            let dataEnd = dataStart + Int(len)
            if dataEnd - start > settings.maxCommandBytes { return .error("command larger than \(settings.maxCommandBytes) bytes") }
            guard dataEnd + 2 <= buffer.count else {
                partial = (count, args, p - start)
                return .needMore
            }
            guard buffer[dataEnd] == 13, buffer[dataEnd + 1] == 10 else { return .error("bulk string not followed by CRLF") }
            args.append(Array(buffer[dataStart..<dataEnd]))
            p = dataEnd + 2
        }
        return .command(args, consumed: p - start)
    }

    private func parseInline() -> Step {
        guard let found = lineEnd(from: start, limit: settings.maxInlineBytes) else { return .needMore }
        guard let end = found else { return .error("too big inline request") }
        let consumed = end - start + (buffer[end] == 13 ? 2 : 1)
        switch Self.splitInline(buffer[start..<end]) {
        case .none: return .error("unbalanced quotes in request")
        case .some(let args): return args.isEmpty ? .empty(consumed: consumed) : .command(args, consumed: consumed)
        }
    }

    /// Splits an inline command line into arguments the way Redis does: spaces
    /// separate, double quotes group (with backslash escapes), single quotes group
    /// literally. Nil when a quote is unbalanced.
    static func splitInline(_ line: ArraySlice<UInt8>) -> [[UInt8]]? {
        var args: [[UInt8]] = []
        var i = line.startIndex
        let end = line.endIndex
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 || b == 11 || b == 12 }
        func hexValue(_ b: UInt8) -> UInt8? {
            switch b {
            case 48...57: return b - 48
            case 97...102: return b - 87
            case 65...70: return b - 55
            default: return nil
            }
        }
        while true {
            while i < end && isSpace(line[i]) { i += 1 }
            if i == end { return args }
            var current: [UInt8] = []
            if line[i] == UInt8(ascii: "\"") {
                i += 1
                while true {
                    guard i < end else { return nil }
                    let b = line[i]
                    if b == UInt8(ascii: "\"") {
                        i += 1
                        guard i == end || isSpace(line[i]) else { return nil }
                        break
                    }
                    if b == 92, i + 1 < end {
                        let e = line[i + 1]
                        if e == UInt8(ascii: "x"), i + 3 < end, let h = hexValue(line[i + 2]), let l = hexValue(line[i + 3]) {
                            current.append(h << 4 | l)
                            i += 4
                            continue
                        }
                        switch e {
                        case UInt8(ascii: "n"): current.append(10)
                        case UInt8(ascii: "r"): current.append(13)
                        case UInt8(ascii: "t"): current.append(9)
                        case UInt8(ascii: "b"): current.append(8)
                        case UInt8(ascii: "a"): current.append(7)
                        default: current.append(e)
                        }
                        i += 2
                        continue
                    }
                    current.append(b)
                    i += 1
                }
            } else if line[i] == UInt8(ascii: "'") {
                i += 1
                while true {
                    guard i < end else { return nil }
                    let b = line[i]
                    if b == UInt8(ascii: "'") {
                        i += 1
                        guard i == end || isSpace(line[i]) else { return nil }
                        break
                    }
                    if b == 92, i + 1 < end, line[i + 1] == UInt8(ascii: "'") {
                        current.append(UInt8(ascii: "'"))
                        i += 2
                        continue
                    }
                    current.append(b)
                    i += 1
                }
            } else {
                while i < end && !isSpace(line[i]) {
                    current.append(line[i])
                    i += 1
                }
            }
            args.append(current)
        }
    }
}
