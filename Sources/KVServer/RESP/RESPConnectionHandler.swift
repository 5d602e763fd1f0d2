import KVTransport

/// Serves one RESP2 connection: reads bytes, runs every complete command in
/// order, and writes all replies of one read with one write (so pipelined
/// commands cost one syscall each way). Runs on the connection's loop.
///
/// Closes after `QUIT`, after a protocol error (answered `-ERR Protocol error: …`,
/// as Redis does), at end of stream, on an I/O error, and during shutdown once
/// the commands in hand are answered.
struct RESPConnectionHandler<Service: KeyValueService>: Sendable {
    let commands: RESPCommands<Service>
    let settings: RESPSettings
    let counters: ServerCounters
    let tracker: ConnectionTracker

    /// Output bytes above which replies are written before running more commands.
    static var flushThreshold: Int { 256 << 10 }

    func serve(_ connection: TCPConnection) async {
        await tracker.serve(connection, counters: counters) { slot in
            await serve(connection, slot: slot)
        }
    }

    private func serve(_ connection: TCPConnection, slot: ConnectionTracker.Slot) async {
        var parser = RESPParser(settings: settings)
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        while true {
            // Received bytes go straight from the socket's buffer into the parser's.
            let received: Int
            do throws(TransportError) {
                received = try await connection.read { parser.append($0) }
            } catch {
                return
            }
            if received == 0 { return }
            tracker.begin(slot)
            var close = false
            var executed = 0
            commands: while let event = parser.next() {
                switch event {
                case .command(let args):
                    executed += 1
                    if await commands.execute(args, into: &out) == .close {
                        close = true
                        break commands
                    }
                case .failure(let message):
                    RESPReply.error("ERR Protocol error: \(message)", into: &out)
                    close = true
                    break commands
                }
                if out.count >= Self.flushThreshold {
                    guard await flush(&out, to: connection) else { return }
                }
            }
            counters.commandsProcessed.wrappingAdd(executed, ordering: .relaxed)
            guard await flush(&out, to: connection) else { return }
            // A partly received command keeps the connection busy: shutdown lets it finish.
            if parser.bufferedByteCount == 0 && tracker.end(slot) { close = true }
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
