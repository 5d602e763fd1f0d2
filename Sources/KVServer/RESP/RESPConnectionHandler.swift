import KVTransport

/// Serves one RESP2 connection: reads bytes, runs every complete command in
/// order, and writes all replies of one read with one write (so pipelined
/// commands cost one syscall each way). Runs on the connection's loop.
///
/// Commands that need no wait (GET and SET served in place by a single node, PING,
/// malformed input) run straight from the loop's readiness event, as in Redis: the
/// connection hands each arrival to the handler's `RESPSession` without waking its
/// task. The first command that must wait (another loop's shard, a cluster, a full
/// output buffer) wakes the task, which awaits it and the commands after it, then
/// hands the connection back to the loop.
///
/// Closes after `QUIT`, after a protocol error (answered `-ERR Protocol error: …`,
/// as Redis does), at end of stream, on an I/O error, and during shutdown once
/// the commands in hand are answered.
struct RESPConnectionHandler<Service: KeyValueService>: Sendable {
    let commands: RESPCommands<Service>
    let settings: RESPSettings
    let counters: ServerCounters
    let tracker: ConnectionTracker

    func serve(_ connection: TCPConnection) async {
        await tracker.serve(connection, counters: counters) { slot in
            // The closures are compiled here, specialised for `Service`; the session that
            // calls them is not generic (a generic class runs unspecialised code, looking up
            // type metadata on every command).
            let session = RESPSession(
                start: { args, out in commands.start(args, into: &out) },
                finish: { command, out in await commands.finish(command, into: &out) },
                parser: RESPParser(settings: settings), counters: counters, tracker: tracker, slot: slot)
            while true {
                let received: Int
                do throws(TransportError) {
                    received = try await connection.read(handingTo: session)
                } catch {
                    return
                }
                if received == 0 { return }
                guard await session.runWaiting(on: connection) else { return }
            }
        }
    }
}

/// One RESP connection's parser and output, shared by the loop (which feeds it input
/// and runs what needs no wait) and the connection's task (which runs what does).
/// Used on the connection's loop thread only, and by one of the two at a time: the loop
/// feeds it only while the task waits in `read(handingTo:)`.
///
/// The state is a struct worked on by mutating methods: one exclusivity check per call
/// into the session, where the class's own stored properties cost one per access (with
/// them, a SET made 35 `swift_beginAccess` calls on the loop; with the struct, 30;
/// counted with a uprobe).
final class RESPSession: TCPInputConsumer, @unchecked Sendable {
    // Unchecked Sendable: see above; all of it is touched on one thread.
    private var state: State

    init(
        start: @escaping (RESPArguments, inout [UInt8]) -> RESPStarted,
        finish: @escaping (RESPWaitingCommand, inout [UInt8]) async -> RESPOutcome,
        parser: RESPParser, counters: ServerCounters, tracker: ConnectionTracker, slot: ConnectionTracker.Slot
    ) {
        state = State(start: start, finish: finish, counters: counters, tracker: tracker, slot: slot, parser: parser)
        state.out.reserveCapacity(4096)
    }

    func consume(_ bytes: UnsafeRawBufferPointer, from connection: TCPConnection) -> Bool {
        state.consume(bytes, from: connection)
    }

    /// The task's part: finishes the waiting command, waits for room to write, runs what
    /// follows, until every buffered command is answered. True to go back to reading,
    /// false to close the connection (after `QUIT`, a protocol error, an I/O error or
    /// during shutdown; the replies in hand are queued first).
    func runWaiting(on connection: TCPConnection) async -> Bool {
        await state.runWaiting(on: connection)
    }

    private struct State {
        /// `RESPCommands.start` and `finish`.
        let start: (RESPArguments, inout [UInt8]) -> RESPStarted
        let finish: (RESPWaitingCommand, inout [UInt8]) async -> RESPOutcome
        let counters: ServerCounters
        let tracker: ConnectionTracker
        let slot: ConnectionTracker.Slot
        var parser: RESPParser
        var out: [UInt8] = []
        /// The command that has to wait, parsed, for the task to finish.
        var waiting: RESPWaitingCommand?
        /// The connection closes once the replies in hand are sent.
        var closing = false

        /// Output bytes above which replies are queued before running more commands.
        static var flushThreshold: Int { 256 << 10 }

        mutating func consume(_ bytes: UnsafeRawBufferPointer, from connection: TCPConnection) -> Bool {
            parser.append(bytes)
            tracker.begin(slot)
            return runImmediately(on: connection)
        }

        /// Runs buffered commands while each is answered at once, queueing the replies. True
        /// when every complete command is answered and input may keep coming to `consume`;
        /// false when the task must take over: a command waits, the output buffer is full, or
        /// the connection closes.
        mutating func runImmediately(on connection: TCPConnection) -> Bool {
            var executed = 0
            defer { counters.commandsProcessed.wrappingAdd(executed, ordering: .relaxed) }
            while let event = parser.nextInPlace({ args in start(args, &out) }) {
                switch event {
                case .command(let started):
                    executed += 1
                    switch started {
                    case .done(.keepOpen): break
                    case .done(.close): closing = true
                    case .waiting(let command): waiting = command
                    }
                case .failure(let message):
                    RESPReply.error("ERR Protocol error: \(message)", into: &out)
                    closing = true
                }
                if closing || waiting != nil {
                    _ = queue(on: connection)
                    return false
                }
                if out.count >= Self.flushThreshold && !queue(on: connection) { return false }
            }
            guard queue(on: connection) else { return false }
            // A partly received command keeps the connection busy: shutdown lets it finish.
            if parser.bufferedByteCount == 0 && tracker.end(slot) {
                closing = true
                return false
            }
            return true
        }

        /// Queues the replies in hand; false when the connection failed or its buffer is over
        /// its limit (the task then waits for room).
        mutating func queue(on connection: TCPConnection) -> Bool {
            do throws(TransportError) {
                try connection.enqueue(recycling: &out)
            } catch {
                closing = true
                return false
            }
            return connection.isWritableNow
        }

        mutating func runWaiting(on connection: TCPConnection) async -> Bool {
            while true {
                if let command = waiting {
                    waiting = nil
                    if await finish(command, &out) == .close { closing = true }
                }
                do throws(TransportError) {
                    if !out.isEmpty { try await connection.write(recycling: &out) }
                    try await connection.waitUntilWritable()
                } catch {
                    return false
                }
                if closing { return false }
                if runImmediately(on: connection) { return true }
            }
        }
    }
}
