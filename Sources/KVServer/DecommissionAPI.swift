import KVCluster
import KVCore

/// `/api/v1/cluster/decommission` of a cluster node (what `kvd decommission` calls):
///
/// ```
/// POST /api/v1/cluster/decommission            → 202 progress (started) | 409 {"error","code"} refused
/// GET  /api/v1/cluster/decommission?wait_ms=N  → 200 progress (N > 0: waits up to N ms for it to finish)
/// ```
///
/// The progress JSON: `{"node", "status" (gossiped), "phase" (none, announcing_leaving,
/// streaming, announcing_left, handing_off_hints, left, failed), "ranges_total",
/// "ranges_streamed", "records_streamed", "bytes_streamed", "hints_delivered",
/// "hints_handed_off", "started_at_ms", "finished_at_ms"?, "error"?, "code"?}`.
///
/// Refusals (409, with `code`): `not_normal` (the node is joining, leaving or has left),
/// `decommission_in_progress`, `another_node_leaving`, `too_few_nodes` (fewer than N
/// nodes would remain: the last node, or 3 nodes at N = 3), `destination_down` (a node
/// that must receive ranges is down). Once the node has left, the server keeps
/// answering this route for `DecommissionSettings.exitDelayMillis`, then shuts down.
public struct DecommissionAPI: Sendable {
    /// The node to decommission.
    public let node: Node
    /// Longest `wait_ms` honoured, in milliseconds. Default 30,000.
    public var maxWaitMillis: Int = 30_000

    /// The route for `node` (a running cluster node).
    public init(node: Node) { self.node = node }

    /// Answers a request for the decommission route.
    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        switch request.method {
        case .post, .put:
            do throws(DecommissionError) {
                try await node.beginDecommission()
            } catch {
                return .error(.conflict, code: error.code, message: error.description)
            }
            return .json(.accepted, await progressJSON())
        case .get, .head:
            guard let params = QueryString.parse(request.query) else {
                return .error(.badRequest, code: "bad_query", message: "query string has a malformed %-escape")
            }
            var waitMillis = 0
            if let raw = params["wait_ms"] {
                guard let n = Int(String(decoding: raw, as: UTF8.self)), n >= 0 else {
                    return .error(.badRequest, code: "bad_wait", message: "wait_ms must be a whole number of milliseconds")
                }
                waitMillis = min(n, maxWaitMillis)
            }
            if waitMillis > 0 { await waitUntilFinished(upTo: .milliseconds(waitMillis)) }
            return .json(.ok, await progressJSON())
        default:
            return ItemAPI<ClusterService>.methodNotAllowed(request.method, allow: "GET, HEAD, POST")
        }
    }

    /// Polls (every 20 ms) until the decommission has finished or `limit` passed.
    private func waitUntilFinished(upTo limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            guard let progress = await node.decommissionProgress, !progress.phase.isFinished else { return }
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
        }
    }

    /// The progress of this node's decommission as JSON (phase `none` when none was asked for).
    public func progressJSON() async -> [UInt8] {
        let progress = await node.decommissionProgress
        let status = node.view.snapshot.states[node.id]?.status
        var json = JSONWriter(capacity: 320)
        json.beginObject()
        json.key("node"); json.string(node.id.name)
        json.key("status"); json.string(status?.description ?? "unknown")
        json.key("phase"); json.string(progress?.phase.rawValue ?? "none")
        if let p = progress {
            json.key("ranges_total"); json.integer(Int64(p.rangesTotal))
            json.key("ranges_streamed"); json.integer(Int64(p.rangesStreamed))
            json.key("records_streamed"); json.integer(p.recordsStreamed)
            json.key("bytes_streamed"); json.integer(p.bytesStreamed)
            json.key("hints_delivered"); json.integer(Int64(p.hintsDelivered))
            json.key("hints_handed_off"); json.integer(Int64(p.hintsHandedOff))
            json.key("started_at_ms"); json.integer(p.startedAtMillis)
            if let finished = p.finishedAtMillis { json.key("finished_at_ms"); json.integer(finished) }
            if let error = p.error {
                json.key("error"); json.string(error.description)
                json.key("code"); json.string(error.code)
            }
        }
        json.endObject()
        return json.bytes
    }
}
