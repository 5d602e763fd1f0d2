/// An incremental HTTP/1.1 request parser: bytes in, requests out.
///
/// A pure value type with no I/O. Feed it whatever a read returned with
/// `append(_:)`, then call `next()` until it returns nil (needs more bytes).
/// Requests split across reads and several pipelined requests in one read both
/// work. Every limit in `HTTPSettings` is checked as bytes arrive, so a client
/// cannot make it buffer more than one request line, the header block and one
/// body. After a `.failure` the parser stays failed: the connection answers the
/// error and closes, since the byte stream can no longer be trusted.
///
/// What it accepts: origin-form targets (absolute-form ones are reduced to their path), `HTTP/1.0` and `HTTP/1.1`, CRLF (or a
/// bare LF) line ends, `Content-Length` bodies. `Transfer-Encoding` (chunked
/// bodies) is refused with 501 and a JSON error asking for Content-Length;
/// HTTP/1.1 requests without `Host` are 400 (RFC 9112 §3.2).
///
/// Cost: one scan of each byte for line ends; request bytes are copied once
/// into the parser's buffer and once into the request's strings and body.
public struct HTTPParser: Sendable {
    /// What `next()` found.
    public enum Event: Sendable, Equatable {
        /// A complete request.
        case request(HTTPRequest)
        /// The headers asked for `Expect: 100-continue` and the body has not arrived:
        /// the connection should send `HTTP/1.1 100 Continue` now.
        case continueExpected
        /// The input is malformed or over a limit; answer `error` and close.
        case failure(HTTPError)
    }

    private enum State: Sendable {
        case requestLine
        case headers
        case body(remaining: Int)
        case failed(HTTPError)
    }

    /// The limits checked while parsing.
    public let settings: HTTPSettings
    private var buffer: [UInt8] = []
    /// Start of unconsumed bytes in `buffer`.
    private var start = 0
    /// Where the search for the next line end resumes (bytes before it hold no LF).
    private var scan = 0
    private var state: State = .requestLine
    private var pending: HTTPRequest?
    private var headerBytes = 0

    public init(settings: HTTPSettings = HTTPSettings()) {
        self.settings = settings
    }

    /// Bytes received but not yet consumed by a returned event.
    public var bufferedByteCount: Int { buffer.count - start }

    /// True when no partial request is buffered (a clean place to close an idle connection).
    public var isIdle: Bool {
        if case .requestLine = state { return bufferedByteCount == 0 }
        return false
    }

    /// Appends received bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            scan -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        while true {
            switch state {
            case .failed(let error):
                return .failure(error)
            case .requestLine:
                guard let line = nextLine(limit: settings.maxRequestLineBytes, tooLong: .requestLineTooLong(limit: settings.maxRequestLineBytes)) else {
                    if case .failed(let e) = state { return .failure(e) }
                    return nil
                }
                // RFC 9112 §2.2: ignore empty lines before a request line.
                if line.isEmpty { continue }
                switch parseRequestLine(line) {
                case .success(let request):
                    pending = request
                    headerBytes = 0
                    state = .headers
                case .failure(let e):
                    return fail(e)
                }
            case .headers:
                let budget = settings.maxHeaderBytes - headerBytes
                guard let line = nextLine(limit: max(budget, 0), tooLong: .headersTooLarge(limit: settings.maxHeaderBytes)) else {
                    if case .failed(let e) = state { return .failure(e) }
                    return nil
                }
                headerBytes += line.count + 2
                if headerBytes > settings.maxHeaderBytes { return fail(.headersTooLarge(limit: settings.maxHeaderBytes)) }
                if line.isEmpty {
                    if let event = endOfHeaders() { return event }
                    continue
                }
                if let e = parseHeaderLine(line) { return fail(e) }
            case .body(let remaining):
                let available = buffer.count - start
                guard available >= remaining else { return nil }
                pending!.body = Array(buffer[start..<(start + remaining)])
                start += remaining
                scan = start
                state = .requestLine
                let request = pending!
                pending = nil
                return .request(request)
            }
        }
    }

    private mutating func fail(_ e: HTTPError) -> Event {
        state = .failed(e)
        pending = nil
        return .failure(e)
    }

    /// The next line without its line end, consuming it; nil when no full line is
    /// buffered (and then, if the partial line is already over `limit`, fails).
    private mutating func nextLine(limit: Int, tooLong: HTTPError) -> ArraySlice<UInt8>? {
        var i = scan
        let end = buffer.count
        while i < end && buffer[i] != 10 { i += 1 }
        if i == end {
            scan = end
            if end - start > limit { state = .failed(tooLong) }
            return nil
        }
        var lineEnd = i
        if lineEnd > start && buffer[lineEnd - 1] == 13 { lineEnd -= 1 }
        if lineEnd - start > limit {
            state = .failed(tooLong)
            return nil
        }
        let line = buffer[start..<lineEnd]
        start = i + 1
        scan = start
        return line
    }

    private func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<HTTPRequest, HTTPError> {
        let parts = line.split(separator: 32, maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformedRequestLine("expected 'METHOD target HTTP/1.1'")) }
        let method = parts[0], version = parts[2]
        var target = parts[1]
        // Absolute form (RFC 9112 §3.2.2, sent to proxies; servers must accept it):
        // keep the path and query, drop scheme and authority.
        for scheme in ["http://", "https://"] where target.count > scheme.utf8.count
            && zip(target, scheme.utf8).allSatisfy({ ($0 | 0x20) == $1 || $0 == $1 }) {
            let afterScheme = target.dropFirst(scheme.utf8.count)
            if let slash = afterScheme.firstIndex(of: UInt8(ascii: "/")) {
                target = afterScheme[slash...]
            } else {
                target = ArraySlice("/".utf8)
            }
            break
        }
        guard !method.isEmpty, method.allSatisfy(Self.isTokenByte) else {
            return .failure(.malformedRequestLine("invalid method"))
        }
        guard let first = target.first, first == UInt8(ascii: "/") || (first == UInt8(ascii: "*") && target.count == 1) else {
            return .failure(.malformedRequestLine("request target must start with '/'"))
        }
        guard target.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failure(.malformedRequestLine("request target contains a control, space or non-ASCII byte"))
        }
        let v: HTTPVersion
        if version.elementsEqual("HTTP/1.1".utf8) {
            v = .http11
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            v = .http10
        } else if version.starts(with: "HTTP/".utf8), version.count == 8, version.dropFirst(5).allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 }) {
            return .failure(.unsupportedVersion)
        } else {
            return .failure(.malformedRequestLine("invalid HTTP version"))
        }
        return .success(HTTPRequest(
            method: HTTPMethod(token: String(decoding: method, as: UTF8.self)),
            target: String(decoding: target, as: UTF8.self), version: v))
    }

    private mutating func parseHeaderLine(_ line: ArraySlice<UInt8>) -> HTTPError? {
        if line.first == 32 || line.first == 9 { return .malformedHeader("obsolete line folding is not accepted") }
        guard let colon = line.firstIndex(of: 58) else { return .malformedHeader("header line without ':'") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty, name.allSatisfy(Self.isTokenByte) else {
            return .malformedHeader("invalid header name")
        }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
        while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
        guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
            return .malformedHeader("header value contains a control byte")
        }
        if pending!.headers.count >= settings.maxHeaderCount {
            return .tooManyHeaders(limit: settings.maxHeaderCount)
        }
        pending!.headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        return nil
    }

    /// Decides the body framing once the blank line after the headers arrived.
    private mutating func endOfHeaders() -> Event? {
        let request = pending!
        if request.version == .http11 && request.header("host") == nil {
            return fail(.missingHost)
        }
        var contentLength: Int?
        for h in request.headers {
            if asciiCaseInsensitiveEquals(h.name, "transfer-encoding") {
                return fail(.unsupportedTransferEncoding)
            }
            if asciiCaseInsensitiveEquals(h.name, "content-length") {
                guard let n = Self.parseContentLength(h.value) else { return fail(.badContentLength) }
                if let previous = contentLength, previous != n { return fail(.badContentLength) }
                contentLength = n
            }
        }
        let length = contentLength ?? 0
        if length > settings.maxBodyBytes { return fail(.bodyTooLarge(limit: settings.maxBodyBytes)) }
        state = .body(remaining: length)
        if length > 0, buffer.count - start < length, let expect = request.header("expect") {
            if asciiCaseInsensitiveEquals(expect, "100-continue") { return .continueExpected }
            return fail(.expectationFailed)
        }
        return nil
    }

    /// A Content-Length value: decimal digits only (a comma list of equal values is also allowed).
    static func parseContentLength(_ value: String) -> Int? {
        var result: Int?
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let digits = part.trimmingSpaces()
            guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            let n = Int(digits)!
            if let r = result, r != n { return nil }
            result = n
        }
        return result
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
