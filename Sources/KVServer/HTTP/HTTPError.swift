/// What is wrong with a request at the HTTP level, before any API handler sees it.
/// Each case maps to a status and a stable machine-readable `code` for the JSON
/// error body `{"error": "...", "code": "..."}`.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request line is not `METHOD target HTTP/x.y` (the string says which part). 400.
    case malformedRequestLine(String)
    /// A header line is malformed (the string says how). 400.
    case malformedHeader(String)
    /// The request line is longer than `HTTPSettings.maxRequestLineBytes`. 414.
    case requestLineTooLong(limit: Int)
    /// The header block is larger than `HTTPSettings.maxHeaderBytes`. 431.
    case headersTooLarge(limit: Int)
    /// More header fields than `HTTPSettings.maxHeaderCount`. 431.
    case tooManyHeaders(limit: Int)
    /// The declared body is larger than `HTTPSettings.maxBodyBytes`. 413.
    case bodyTooLarge(limit: Int)
    /// Content-Length is not a decimal number, or several disagree. 400.
    case badContentLength
    /// A Transfer-Encoding (such as chunked) was sent; kvd reads Content-Length bodies only. 501.
    case unsupportedTransferEncoding
    /// An `Expect` other than `100-continue`. 417.
    case expectationFailed
    /// An HTTP/1.1 request without a Host header (RFC 9112 §3.2). 400.
    case missingHost
    /// A version other than HTTP/1.0 or HTTP/1.1. 505.
    case unsupportedVersion

    /// The response status for this error.
    public var status: HTTPStatus {
        switch self {
        case .malformedRequestLine, .malformedHeader, .badContentLength, .missingHost: return .badRequest
        case .requestLineTooLong: return .uriTooLong
        case .headersTooLarge, .tooManyHeaders: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .payloadTooLarge
        case .unsupportedTransferEncoding: return .notImplemented
        case .expectationFailed: return .expectationFailed
        case .unsupportedVersion: return .httpVersionNotSupported
        }
    }

    /// A stable identifier for clients.
    public var code: String {
        switch self {
        case .malformedRequestLine: return "malformed_request_line"
        case .malformedHeader: return "malformed_header"
        case .requestLineTooLong: return "request_line_too_long"
        case .headersTooLarge: return "headers_too_large"
        case .tooManyHeaders: return "too_many_headers"
        case .bodyTooLarge: return "body_too_large"
        case .badContentLength: return "bad_content_length"
        case .unsupportedTransferEncoding: return "transfer_encoding_not_supported"
        case .expectationFailed: return "expectation_failed"
        case .missingHost: return "missing_host"
        case .unsupportedVersion: return "http_version_not_supported"
        }
    }

    public var description: String {
        switch self {
        case .malformedRequestLine(let why): return "malformed request line: \(why)"
        case .malformedHeader(let why): return "malformed header: \(why)"
        case .requestLineTooLong(let limit): return "request line is longer than \(limit) bytes"
        case .headersTooLarge(let limit): return "header fields are larger than \(limit) bytes"
        case .tooManyHeaders(let limit): return "more than \(limit) header fields"
        case .bodyTooLarge(let limit): return "request body is larger than \(limit) bytes"
        case .badContentLength: return "Content-Length must be one decimal number"
        case .unsupportedTransferEncoding: return "Transfer-Encoding (chunked bodies) is not supported; send Content-Length"
        case .expectationFailed: return "only 'Expect: 100-continue' is supported"
        case .missingHost: return "HTTP/1.1 request without a Host header"
        case .unsupportedVersion: return "only HTTP/1.0 and HTTP/1.1 are supported"
        }
    }
}
