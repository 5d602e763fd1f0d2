/// An HTTP/1.1 response, serialized straight into a connection's output bytes.
///
/// Every response carries `Content-Length` (so keep-alive and pipelining work)
/// and, when the connection is about to close, `Connection: close`.
public struct HTTPResponse: Sendable, Equatable {
    /// Status code and reason phrase.
    public var status: HTTPStatus
    /// Extra header fields, written after the standard ones.
    public var headers: [(name: String, value: String)]
    /// The `Content-Type` header, if any.
    public var contentType: String?
    /// The body; `Content-Length` is derived from it.
    public var body: [UInt8]

    public init(status: HTTPStatus, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// A JSON response with the body already encoded.
    public static func json(_ status: HTTPStatus, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: body)
    }

    /// The JSON error body every kvd error uses: `{"error": message, "code": code}`.
    public static func error(_ status: HTTPStatus, code: String, message: String) -> HTTPResponse {
        var json = JSONWriter()
        json.beginObject()
        json.key("error"); json.string(message)
        json.key("code"); json.string(code)
        json.endObject()
        return .json(status, json.bytes)
    }

    /// The response for a protocol-level error from `HTTPParser`.
    public static func error(_ error: HTTPError) -> HTTPResponse {
        .error(error.status, code: error.code, message: error.description)
    }

    /// Appends the status line, headers and body to `out`. `headOnly` leaves the
    /// body out (for HEAD) while still announcing its length; `dateLine` is a
    /// ready `Date: …\r\n` header line.
    public func serialize(into out: inout [UInt8], keepAlive: Bool, headOnly: Bool = false, dateLine: [UInt8] = []) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(status.code, to: &out)
        out.append(32)
        out.append(contentsOf: status.reason.utf8)
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: dateLine)
        if let contentType {
            out.append(contentsOf: "Content-Type: ".utf8)
            out.append(contentsOf: contentType.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(body.count, to: &out)
        out.append(contentsOf: "\r\n".utf8)
        for h in headers {
            out.append(contentsOf: h.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: h.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if !keepAlive { out.append(contentsOf: "Connection: close\r\n".utf8) }
        out.append(contentsOf: "\r\n".utf8)
        if !headOnly { out.append(contentsOf: body) }
    }

    /// The interim `100 Continue` response.
    public static let continueBytes: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.contentType == b.contentType && a.body == b.body
            && a.headers.count == b.headers.count
            && zip(a.headers, b.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
