import KVTransport

/// Serves one HTTP/1.1 connection: reads bytes, parses requests (pipelined ones
/// too), answers each through the `ItemAPI` in order, and writes the responses
/// of one read in one write. Runs on the connection's loop.
///
/// Closes after a response marked `Connection: close` (the client asked, HTTP/1.0
/// without keep-alive, a malformed request, or server shutdown), at end of
/// stream, on an I/O error, and when a started request does not complete within
/// `HTTPSettings.requestTimeoutMillis`.
struct HTTPConnectionHandler<Service: KeyValueService>: Sendable {
    let api: ItemAPI<Service>
    let settings: HTTPSettings
    let counters: ServerCounters
    let tracker: ConnectionTracker

    /// Output bytes above which replies are written before parsing further.
    static var flushThreshold: Int { 256 << 10 }

    func serve(_ connection: TCPConnection) async {
        await tracker.serve(connection, counters: counters) { slot in
            await serve(connection, slot: slot)
        }
    }

    private func serve(_ connection: TCPConnection, slot: ConnectionTracker.Slot) async {
        var parser = HTTPParser(settings: settings)
        var date = HTTPDateLine()
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        while true {
            let timeout: Duration? = parser.isIdle ? nil : .milliseconds(settings.requestTimeoutMillis)
            // Received bytes go straight from the socket's buffer into the parser's.
            let received: Int
            do throws(TransportError) {
                received = try await connection.read(timeout: timeout) { parser.append($0) }
            } catch {
                return
            }
            if received == 0 { return }
            tracker.begin(slot)
            var close = false
            events: while let event = parser.next() {
                switch event {
                case .continueExpected:
                    out.append(contentsOf: HTTPResponse.continueBytes)
                case .request(let request):
                    counters.httpRequests.wrappingAdd(1, ordering: .relaxed)
                    let response = await api.respond(to: request)
                    let keepAlive = request.keepAlive && !tracker.isDraining
                    response.serialize(
                        into: &out, keepAlive: keepAlive, headOnly: request.method == .head,
                        dateLine: date.line(nowMillis: api.service.nowMillis()))
                    if !keepAlive {
                        close = true
                        break events
                    }
                case .failure(let error):
                    HTTPResponse.error(error).serialize(into: &out, keepAlive: false, dateLine: date.line(nowMillis: api.service.nowMillis()))
                    close = true
                    break events
                }
                if out.count >= Self.flushThreshold {
                    guard await flush(&out, to: connection) else { return }
                }
            }
            guard await flush(&out, to: connection) else { return }
            // A partly received request keeps the connection busy: shutdown lets it finish.
            if parser.isIdle && tracker.end(slot) { close = true }
            if close { return }
        }
    }

    private func flush(_ out: inout [UInt8], to connection: TCPConnection) async -> Bool {
        guard !out.isEmpty else { return true }
        do throws(TransportError) {
            try await connection.write(recycling: &out)
        } catch {
            return false
        }
        return true
    }
}
