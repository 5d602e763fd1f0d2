/// An HTTP request method. The API uses four; anything else is kept by name so
/// the router can answer 405 with it.
public enum HTTPMethod: Equatable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete
    case other(String)

    /// The method for a request-line token (case-sensitive, as RFC 9110 says).
    public init(token: String) {
        switch token {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        default: self = .other(token)
        }
    }

    public var description: String {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .other(let s): return s
        }
    }
}

/// The protocol version of a request. Only HTTP/1.0 and HTTP/1.1 are spoken.
public enum HTTPVersion: Equatable, Sendable {
    case http10, http11
}

/// One parsed HTTP/1.x request, as `HTTPParser` produces it.
///
/// Header names keep their spelling; look them up with `header(_:)`, which
/// compares case-insensitively. The body is the whole Content-Length body.
public struct HTTPRequest: Sendable, Equatable {
    /// The request method.
    public var method: HTTPMethod
    /// The request target as sent (origin form: path plus optional `?query`).
    public var target: String
    /// HTTP/1.0 or HTTP/1.1 (decides the keep-alive default).
    public var version: HTTPVersion
    /// Header fields in the order received, values with surrounding whitespace removed.
    public var headers: [(name: String, value: String)]
    /// The Content-Length body (empty when none).
    public var body: [UInt8]

    public init(
        method: HTTPMethod, target: String, version: HTTPVersion = .http11,
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The path part of the target (before `?`), not percent-decoded.
    public var path: Substring {
        if let q = target.firstIndex(of: "?") { return target[..<q] }
        return target[...]
    }

    /// The raw query string (after `?`), or "" when there is none.
    public var query: Substring {
        if let q = target.firstIndex(of: "?") { return target[target.index(after: q)...] }
        return ""
    }

    /// The first value of header `name` (ASCII case-insensitive), if present.
    public func header(_ name: String) -> String? {
        for h in headers where asciiCaseInsensitiveEquals(h.name, name) { return h.value }
        return nil
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        var close = false
        var keep = false
        for h in headers where asciiCaseInsensitiveEquals(h.name, "connection") {
            for option in h.value.split(separator: ",") {
                let o = option.trimmingSpaces()
                if asciiCaseInsensitiveEquals(o, "close") { close = true }
                if asciiCaseInsensitiveEquals(o, "keep-alive") { keep = true }
            }
        }
        if close { return false }
        return version == .http11 || keep
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.body == b.body
            && a.headers.count == b.headers.count
            && zip(a.headers, b.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// ASCII case-insensitive comparison, for header names and tokens.
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (p, q) in zip(x, y) where p != q {
        let lp = p >= 65 && p <= 90 ? p | 0x20 : p
        let lq = q >= 65 && q <= 90 ? q | 0x20 : q
        if lp != lq { return false }
    }
    return true
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Substring {
        let s = Substring(self)
        var start = s.startIndex, end = s.endIndex
        while start < end, s[start] == " " || s[start] == "\t" { start = s.index(after: start) }
        while end > start {
            let before = s.index(before: end)
            guard s[before] == " " || s[before] == "\t" else { break }
            end = before
        }
        return s[start..<end]
    }
}
