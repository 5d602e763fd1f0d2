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
/// Cost: `nextInPlace` hands the arguments over where they lie in the receive buffer (no
/// copy, no allocation); `next` copies each one into an array.
public struct RESPParser: Sendable {
    /// What `next()` found.
    public enum Event: Sendable, Equatable {
        /// A command: its name and arguments, as bytes.
        case command([[UInt8]])
        /// A protocol error; reply `-ERR Protocol error: <message>` and close.
        case failure(String)
    }

    /// What `nextInPlace` found.
    public enum InPlaceEvent<Result> {
        /// A command, and what the caller's closure made of its arguments.
        case command(Result)
        /// A protocol error; reply `-ERR Protocol error: <message>` and close.
        case failure(String)
    }

    /// The limits checked while parsing.
    public let settings: RESPSettings
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: String?
    /// Where the arguments of the command being parsed lie: in `buffer`, relative to
    /// `start` (multibulk), or in `inlineBytes` (inline, whose escapes are decoded).
    private var ranges: [Range<Int>] = []
    private var inlineBytes: [UInt8] = []
    /// A multibulk command whose arguments are still arriving: its argument count and where
    /// parsing resumes (relative to `start`); `ranges` holds the arguments parsed so far, so
    /// a large command is scanned once, not once per read.
    private var partial: (count: Int, offset: Int)?

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
        switch nextInPlace({ $0.arrays }) {
        case .command(let args): return .command(args)
        case .failure(let message): return .failure(message)
        case nil: return nil
        }
    }

    /// The next complete command, handed to `body` as views into the parser's buffer (valid
    /// only during the call), with what `body` returned; a protocol error; or nil when more
    /// bytes are needed.
    public mutating func nextInPlace<Result>(_ body: (RESPArguments) -> Result) -> InPlaceEvent<Result>? {
        while true {
            if let failure { return .failure(failure) }
            guard start < buffer.count else { return nil }
            let step = partial != nil || buffer[start] == UInt8(ascii: "*") ? parseMultibulk() : parseInline()
            switch step {
            case .needMore: return nil
            case .empty(let consumed): start += consumed; continue
            case .command(let consumed, let inline):
                let begin = start
                start += consumed
                // unsafe: the views live only for the call; `body` cannot reach the parser.
                let result = ranges.withUnsafeBufferPointer { ranges in
                    if inline {
                        return inlineBytes.withUnsafeBytes { body(RESPArguments(bytes: $0, ranges: ranges)) }
                    }
                    return buffer.withUnsafeBytes { raw in
                        body(RESPArguments(bytes: UnsafeRawBufferPointer(rebasing: raw[begin...]), ranges: ranges))
                    }
                }
                return .command(result)
            case .error(let message):
                failure = message
                return .failure(message)
            }
        }
    }

    private enum Step {
        case needMore
        case empty(consumed: Int)
        /// A command of `consumed` bytes whose arguments `ranges` locates (in `inlineBytes` when `inline`).
        case command(consumed: Int, inline: Bool)
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
        var p: Int
        if let resumed = partial {
            (count, p) = (resumed.count, start + resumed.offset)
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
            ranges.removeAll(keepingCapacity: true)
        }
        while ranges.count < count {
            guard p < buffer.count else {
                partial = (count, p - start)
                return .needMore
            }
            guard buffer[p] == UInt8(ascii: "$") else {
                return .error("expected '$', got '\(Character(Unicode.Scalar(buffer[p])))'")
            }
            guard let lenEnd = lineEnd(from: p + 1, limit: 20) else {
                partial = (count, p - start)
                return .needMore
            }
            guard let le = lenEnd, let len = parseDecimal(buffer[(p + 1)..<le]), len >= 0, len <= settings.maxBulkBytes else {
                return .error("invalid bulk length")
            }
            let dataStart = le + (buffer[le] == 13 ? 2 : 1)
            let dataEnd = dataStart + Int(len)
            if dataEnd - start > settings.maxCommandBytes { return .error("command larger than \(settings.maxCommandBytes) bytes") }
            guard dataEnd + 2 <= buffer.count else {
                partial = (count, p - start)
                return .needMore
            }
            guard buffer[dataEnd] == 13, buffer[dataEnd + 1] == 10 else { return .error("bulk string not followed by CRLF") }
            ranges.append((dataStart - start)..<(dataEnd - start))
            p = dataEnd + 2
        }
        return .command(consumed: p - start, inline: false)
    }

    private mutating func parseInline() -> Step {
        guard let found = lineEnd(from: start, limit: settings.maxInlineBytes) else { return .needMore }
        guard let end = found else { return .error("too big inline request") }
        let consumed = end - start + (buffer[end] == 13 ? 2 : 1)
        guard let args = Self.splitInline(buffer[start..<end]) else { return .error("unbalanced quotes in request") }
        if args.isEmpty { return .empty(consumed: consumed) }
        inlineBytes.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
        for arg in args {
            ranges.append(inlineBytes.count..<(inlineBytes.count + arg.count))
            inlineBytes.append(contentsOf: arg)
        }
        return .command(consumed: consumed, inline: true)
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

/// One command's arguments (the name first) as views into memory the caller lends for the
/// duration of one call (`RESPParser.nextInPlace`, `RESPArguments.with`): read them, copy
/// what must outlive the call (`array(_:)`), never keep the views.
public struct RESPArguments {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline let ranges: UnsafeBufferPointer<Range<Int>>

    /// The number of arguments, the command name included.
    @inlinable public var count: Int { ranges.count }

    /// The bytes of argument `i` (0 is the command name).
    @inlinable public subscript(i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[ranges[i]])
    }

    /// A copy of argument `i`.
    @inlinable public func array(_ i: Int) -> [UInt8] { Array(self[i]) }

    /// Copies of all arguments.
    public var arrays: [[UInt8]] { (0..<count).map(array) }

    /// Calls `body` with `args` laid out as `RESPArguments`.
    public static func with<Result>(_ args: [[UInt8]], _ body: (RESPArguments) -> Result) -> Result {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for arg in args {
            ranges.append(bytes.count..<(bytes.count + arg.count))
            bytes.append(contentsOf: arg)
        }
        return ranges.withUnsafeBufferPointer { r in bytes.withUnsafeBytes { body(RESPArguments(bytes: $0, ranges: r)) } }
    }
}
