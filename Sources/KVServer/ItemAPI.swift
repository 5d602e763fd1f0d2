import KVCore

/// The seed JSON API over HTTP, mapped onto a `KeyValueService`:
///
/// ```
/// POST   /api/v1/item   {"key":"user:1","value":"<base64>","ttl":86400}  → 201 {"key","timestamp"}
/// GET    /api/v1/item?key=user:1&consistency=eventual|strong             → 200 {"key","value","timestamp"} | 404
/// DELETE /api/v1/item?key=user:1                                         → 200 {"deleted":true}
/// GET    /api/v1/health                                                  → 200 {"status":"ok",…} | 503
/// GET    /api/v1/cluster                                                 → 200 ring and node states (cluster mode) | 404
/// POST   /api/v1/cluster/decommission                                    → 202 | 409 (cluster mode; `DecommissionAPI`)
/// GET    /api/v1/cluster/decommission?wait_ms=N                          → 200 decommission progress
/// ```
///
/// `consistency` (a query parameter on any item request) is `one`/`eventual`,
/// `quorum`/`strong` or `all`; without it the node's configured default applies. When
/// too few replicas answer, the reply is 503 `{"error", "code": "quorum_not_reached",
/// "needed": n, "answered": a}`.
///
/// `timestamp` in JSON is the write's hybrid-logical-clock time in milliseconds
/// since the Unix epoch (the HLC's physical part, as in the seed example); two
/// writes in the same millisecond show the same number. `ttl` is in whole
/// seconds (a positive integer); the record then reads as absent once expired.
///
/// Errors are `{"error": "...", "code": "..."}`: 400 malformed input, 404 no
/// such key or route, 405 wrong method (with `Allow`), 413 key or value over
/// `Limits`, 429 overloaded, 503 shutting down (or the node has left its cluster) or
/// quorum not reached, 500 storage failure.
public struct ItemAPI<Service: KeyValueService>: Sendable {
    /// The node (or coordinator) requests are answered from.
    public let service: Service
    /// Longest TTL accepted, in seconds. Default 315,360,000 (10 years).
    public var maxTTLSeconds: Int64 = 315_360_000
    /// Produces the `/api/v1/cluster` JSON (set in cluster mode; nil answers 404).
    public var clusterStatus: (@Sendable () async -> [UInt8])?
    /// Answers `/api/v1/cluster/decommission` (set in cluster mode; nil answers 404).
    public var decommission: DecommissionAPI?

    public init(service: Service) {
        self.service = service
    }

    /// Answers one request. Never throws: every failure becomes an error response.
    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = request.path
        if path == "/api/v1/item" {
            switch request.method {
            case .post, .put: return await put(request)
            case .get, .head: return await get(request)
            case .delete: return await delete(request)
            default: return Self.methodNotAllowed(request.method, allow: "GET, HEAD, POST, PUT, DELETE")
            }
        }
        if path == "/api/v1/cluster" {
            guard let clusterStatus else {
                return .error(.notFound, code: "not_a_cluster", message: "this node runs alone (no [cluster] enabled)")
            }
            switch request.method {
            case .get, .head: return .json(.ok, await clusterStatus())
            default: return Self.methodNotAllowed(request.method, allow: "GET, HEAD")
            }
        }
        if path == "/api/v1/cluster/decommission" {
            guard let decommission else {
                return .error(.notFound, code: "not_a_cluster", message: "this node runs alone (no [cluster] enabled)")
            }
            return await decommission.respond(to: request)
        }
        if path == "/api/v1/health" {
            switch request.method {
            case .get, .head: return await health()
            default: return Self.methodNotAllowed(request.method, allow: "GET, HEAD")
            }
        }
        return .error(.notFound, code: "no_such_route", message: "no route for \(path); see /api/v1/item and /api/v1/health")
    }

    /// The `consistency` parameter (default: the service's configured level).
    static func consistency(_ params: [String: [UInt8]]) -> Result<ReadConsistency, APIError> {
        guard let raw = params["consistency"] else { return .success(.default) }
        guard let c = ReadConsistency(parsing: String(decoding: raw, as: UTF8.self)) else {
            return .failure(.badRequest(code: "bad_consistency", message: "consistency must be one, quorum, all, eventual or strong"))
        }
        return .success(c)
    }

    static func methodNotAllowed(_ method: HTTPMethod, allow: String) -> HTTPResponse {
        var r = HTTPResponse.error(.methodNotAllowed, code: "method_not_allowed", message: "method \(method) is not allowed here; allowed: \(allow)")
        r.headers.append(("Allow", allow))
        return r
    }

    /// The `key` and `consistency` query parameters, or the error response to send.
    private func keyAndConsistency(from request: HTTPRequest) -> Result<(Key, ReadConsistency), APIError> {
        key(from: request).flatMap { key, params in Self.consistency(params).map { (key, $0) } }
    }

    /// The key from a query string, or the error response to send.
    private func key(from request: HTTPRequest) -> Result<(Key, [String: [UInt8]]), APIError> {
        guard let params = QueryString.parse(request.query) else {
            return .failure(.badRequest(code: "bad_query", message: "query string has a malformed %-escape"))
        }
        guard let raw = params["key"], !raw.isEmpty else {
            return .failure(.badRequest(code: "missing_key", message: "query parameter 'key' is required"))
        }
        let key = Key(raw)
        do throws(KVError) {
            try service.limits.check(key: key)
        } catch {
            return .failure(.storage(error))
        }
        return .success((key, params))
    }

    private func get(_ request: HTTPRequest) async -> HTTPResponse {
        let key: Key, consistency: ReadConsistency
        switch keyAndConsistency(from: request) {
        case .success(let found): (key, consistency) = found
        case .failure(let e): return e.response
        }
        let record: Record?
        do throws(KVError) {
            record = try await service.readSoon(key, consistency: consistency)
        } catch {
            return APIError.storage(error).response
        }
        guard let record, let value = record.visibleValue(nowMillis: service.nowMillis()) else {
            return .error(.notFound, code: "not_found", message: "key not found")
        }
        var json = JSONWriter(capacity: value.bytes.count * 4 / 3 + key.bytes.count + 64)
        json.beginObject()
        json.key("key"); json.string(String(decoding: key.bytes, as: UTF8.self))
        json.key("value"); json.string(utf8: Base64.encode(value.bytes))
        json.key("timestamp"); json.integer(record.timestamp.physicalMillis)
        if let expires = record.expiresAtMillis {
            json.key("expires_at"); json.integer(expires)
        }
        json.endObject()
        return .json(.ok, json.bytes)
    }

    private func put(_ request: HTTPRequest) async -> HTTPResponse {
        let document: JSONValue
        do throws(JSONValue.SyntaxError) {
            document = try JSONValue.parse(request.body)
        } catch {
            return APIError.badRequest(code: "bad_json", message: error.description).response
        }
        guard let object = document.objectValue else {
            return APIError.badRequest(code: "bad_json", message: "body must be a JSON object").response
        }
        guard case .string(let keyText)? = object["key"], !keyText.isEmpty else {
            return APIError.badRequest(code: "missing_key", message: "'key' must be a non-empty string").response
        }
        guard case .string(let valueText)? = object["value"] else {
            return APIError.badRequest(code: "missing_value", message: "'value' must be a base64 string").response
        }
        guard let valueBytes = Base64.decode(valueText.utf8) else {
            return APIError.badRequest(code: "bad_base64", message: "'value' is not valid base64 (RFC 4648, with padding)").response
        }
        var expiresAt: UInt64?
        switch object["ttl"] {
        case nil, .null?:
            break
        case .integer(let ttl)? where ttl > 0 && ttl <= maxTTLSeconds:
            expiresAt = service.nowMillis() + UInt64(ttl) * 1000
        default:
            return APIError.badRequest(code: "bad_ttl", message: "'ttl' must be a whole number of seconds between 1 and \(maxTTLSeconds)").response
        }
        let key = Key(keyText)
        let value = Value(valueBytes)
        let consistency: ReadConsistency
        switch Self.consistency(QueryString.parse(request.query) ?? [:]) {
        case .success(let c): consistency = c
        case .failure(let e): return e.response
        }
        let timestamp: Timestamp
        do throws(KVError) {
            try service.limits.check(key: key)
            try service.limits.check(value: value)
            timestamp = try await service.writeSoon(key, value: value, expiresAtMillis: expiresAt, consistency: consistency)
        } catch {
            return APIError.storage(error).response
        }
        var json = JSONWriter()
        json.beginObject()
        json.key("key"); json.string(keyText)
        json.key("timestamp"); json.integer(timestamp.physicalMillis)
        json.endObject()
        return .json(.created, json.bytes)
    }

    private func delete(_ request: HTTPRequest) async -> HTTPResponse {
        let key: Key, consistency: ReadConsistency
        switch keyAndConsistency(from: request) {
        case .success(let found): (key, consistency) = found
        case .failure(let e): return e.response
        }
        do throws(KVError) {
            _ = try await service.writeSoon(key, value: nil, expiresAtMillis: nil, consistency: consistency)
        } catch {
            return APIError.storage(error).response
        }
        var json = JSONWriter()
        json.beginObject()
        json.key("deleted"); json.bool(true)
        json.endObject()
        return .json(.ok, json.bytes)
    }

    private func health() async -> HTTPResponse {
        let stats = await service.statistics()
        var json = JSONWriter()
        json.beginObject()
        json.key("status"); json.string(stats.accepting ? "ok" : "shutting_down")
        json.key("shards"); json.integer(UInt64(stats.shards))
        json.key("stored_entries"); json.integer(stats.storedEntries)
        json.endObject()
        return .json(stats.accepting ? .ok : .serviceUnavailable, json.bytes)
    }
}

/// Why an item request failed, and the response that says so.
public enum APIError: Error, Sendable, Equatable {
    /// The request is malformed; `code` names the problem (`bad_json`, `bad_base64`,
    /// `missing_key`, `missing_value`, `bad_ttl`, `bad_consistency`, `bad_query`).
    case badRequest(code: String, message: String)
    /// The storage layer refused or failed.
    case storage(KVError)

    /// The JSON error response for this error.
    public var response: HTTPResponse {
        switch self {
        case .badRequest(let code, let message):
            return .error(.badRequest, code: code, message: message)
        case .storage(let error):
            switch error {
            case .emptyKey: return .error(.badRequest, code: "missing_key", message: error.description)
            case .keyTooLarge: return .error(.payloadTooLarge, code: "key_too_large", message: error.description)
            case .valueTooLarge: return .error(.payloadTooLarge, code: "value_too_large", message: error.description)
            case .invalidArgument: return .error(.badRequest, code: "invalid_argument", message: error.description)
            case .overloaded: return .error(.tooManyRequests, code: "overloaded", message: error.description)
            case .closed:
                return .error(
                    .serviceUnavailable, code: "unavailable", message: "the node is shutting down or has left its cluster")
            case .quorumNotReached(let needed, let answered):
                var json = JSONWriter()
                json.beginObject()
                json.key("error"); json.string(error.description)
                json.key("code"); json.string("quorum_not_reached")
                json.key("needed"); json.integer(Int64(needed))
                json.key("answered"); json.integer(Int64(answered))
                json.endObject()
                return .json(.serviceUnavailable, json.bytes)
            case .clockSkew, .corruption, .io: return .error(.internalServerError, code: "storage_error", message: error.description)
            }
        }
    }
}
