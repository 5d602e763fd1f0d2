import KVCore

/// Answers RESP commands against a `KeyValueService`: the Redis command subset
/// kvd speaks. Replies are appended to the connection's output bytes; the caller
/// writes them once per batch of pipelined commands.
///
/// TTL semantics match the HTTP API: `SET … EX s`/`PX ms` store an absolute
/// expiry on the record, reads treat an expired record as absent, `TTL`/`PTTL`
/// answer -2 for a missing (or expired) key and -1 for a key without expiry.
/// Unsupported: `SET … NX|XX|GET|KEEPTTL` (a check-then-set would not be atomic
/// against concurrent writers on other connections, so it is refused with a
/// syntax error rather than done wrong), databases other than 0.
public struct RESPCommands<Service: KeyValueService>: Sendable {
    /// The node commands read and write.
    public let service: Service
    /// Counters `INFO` reports.
    public let counters: ServerCounters
    /// What `INFO server` reports.
    public let serverInfo: RESPServerInfo

    public init(service: Service, counters: ServerCounters, serverInfo: RESPServerInfo) {
        self.service = service
        self.counters = counters
        self.serverInfo = serverInfo
    }

    /// What the connection does after a command.
    public typealias Outcome = RESPOutcome
    typealias Waiting = RESPWaitingCommand
    typealias Started = RESPStarted

    /// Runs one command and appends its reply to `out`.
    /// (The connection handler counts commands in `ServerCounters`, once per batch.)
    public func execute(_ args: [[UInt8]], into out: inout [UInt8]) async -> Outcome {
        switch RESPArguments.with(args, { start($0, into: &out) }) {
        case .done(let outcome): return outcome
        case .waiting(let command): return await finish(command, into: &out)
        }
    }

    /// Runs one command as far as it goes without suspending: answered when it needs no
    /// wait (a malformed command, PING, a GET or SET the service serves in place), else
    /// handed back parsed, untouched, for `finish`. What the connection's loop runs straight
    /// from a readiness event.
    /// The arguments are views valid during the call: what a waiting command keeps is copied.
    func start(_ args: RESPArguments, into out: inout [UInt8]) -> Started {
        guard args.count > 0 else { return .done(.keepOpen) }
        guard let command = RESPCommand(name: args[0]) else {
            var message = "ERR unknown command '\(Self.printable(args.array(0)))', with args beginning with: "
            for i in 1..<min(args.count, 9) { message += "'\(Self.printable(args.array(i)))' " }
            RESPReply.error(message, into: &out)
            return .done(.keepOpen)
        }
        let arity = command.arity
        if (arity > 0 && args.count != arity) || (arity < 0 && args.count < -arity) {
            RESPReply.error("ERR wrong number of arguments for '\(command.rawValue)' command", into: &out)
            return .done(.keepOpen)
        }
        switch command {
        case .get:
            guard let key = checkedKey(args.array(1), into: &out) else { break }
            guard let now = service.readImmediately(key, consistency: .default) else { return .waiting(.get(key)) }
            replyToGet(now, into: &out)
        case .set:
            guard let (key, value, expiresAt) = setRequest(args, into: &out) else { break }
            guard let now = service.writeImmediately(key, value: value, expiresAtMillis: expiresAt, consistency: .default)
            else { return .waiting(.set(key, value, expiresAtMillis: expiresAt)) }
            replyToSet(now, into: &out)
        case .ping:
            if args.count == 1 {
                out.append(contentsOf: "+PONG\r\n".utf8)
            } else if args.count == 2 {
                RESPReply.bulk(args.array(1), into: &out)
            } else {
                RESPReply.error("ERR wrong number of arguments for 'ping' command", into: &out)
            }
        case .echo: RESPReply.bulk(args.array(1), into: &out)
        case .del, .exists, .mget, .mset, .ttl, .pttl, .info: return .waiting(.other(command, args.arrays))
        case .command: commandInfo(args.arrays, into: &out)
        case .quit:
            out.append(contentsOf: RESPReply.ok)
            return .done(.close)
        case .select:
            if args[1].elementsEqual([UInt8(ascii: "0")]) {
                out.append(contentsOf: RESPReply.ok)
            } else if parseDecimal(args[1]) != nil {
                RESPReply.error("ERR DB index is out of range", into: &out)
            } else {
                RESPReply.error("ERR value is not an integer or out of range", into: &out)
            }
        case .config: config(args.arrays, into: &out)
        }
        return .done(.keepOpen)
    }

    /// Runs a command `start` handed back, awaiting the service, and appends its reply.
    func finish(_ command: Waiting, into out: inout [UInt8]) async -> Outcome {
        switch command {
        case .get(let key):
            replyToGet(await Self.outcome { () async throws(KVError) in try await service.read(key, consistency: .default) }, into: &out)
        case .set(let key, let value, let expiresAt):
            let written = await Self.outcome { () async throws(KVError) in
                try await service.write(key, value: value, expiresAtMillis: expiresAt, consistency: .default)
            }
            replyToSet(written, into: &out)
        case .other(let command, let args):
            switch command {
            case .del: await del(args, into: &out)
            case .exists: await exists(args, into: &out)
            case .mget: await mget(args, into: &out)
            case .mset: await mset(args, into: &out)
            case .ttl: await ttl(args[1], millis: false, into: &out)
            case .pttl: await ttl(args[1], millis: true, into: &out)
            case .info: await info(args, into: &out)
            default: preconditionFailure("start answers \(command) itself")
            }
        }
        return .keepOpen
    }

    private static func outcome<T>(_ body: () async throws(KVError) -> T) async -> Result<T, KVError> {
        do throws(KVError) {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    /// A `KVError` as a RESP error line.
    static func reply(_ error: KVError, into out: inout [UInt8]) {
        switch error {
        case .overloaded: RESPReply.error("BUSY \(error)", into: &out)
        case .closed: RESPReply.error("ERR server is shutting down", into: &out)
        default: RESPReply.error("ERR \(error)", into: &out)
        }
    }

    private func checkedKey(_ bytes: [UInt8], into out: inout [UInt8]) -> Key? {
        let key = Key(bytes)
        do throws(KVError) {
            try service.limits.check(key: key)
            return key
        } catch {
            Self.reply(error, into: &out)
            return nil
        }
    }

    /// The record and visible value of `key` now, nil when absent, deleted or expired.
    private func visible(_ key: Key) async -> Result<(Record, Value)?, KVError> {
        do throws(KVError) {
            guard let record = try await service.readSoon(key, consistency: .default),
                let value = record.visibleValue(nowMillis: service.nowMillis())
            else { return .success(nil) }
            return .success((record, value))
        } catch {
            return .failure(error)
        }
    }

    private func replyToGet(_ read: Result<Record?, KVError>, into out: inout [UInt8]) {
        switch read {
        case .success(let record?):
            if let value = record.visibleValue(nowMillis: service.nowMillis()) {
                RESPReply.bulk(value.bytes, into: &out)
            } else {
                out.append(contentsOf: RESPReply.nullBulk)
            }
        case .success(nil): out.append(contentsOf: RESPReply.nullBulk)
        case .failure(let e): Self.reply(e, into: &out)
        }
    }

    private func replyToSet(_ written: Result<Timestamp, KVError>, into out: inout [UInt8]) {
        switch written {
        case .success: out.append(contentsOf: RESPReply.ok)
        case .failure(let e): Self.reply(e, into: &out)
        }
    }

    /// SET's key, value and expiry, checked; nil with an error reply in `out` when malformed.
    private func setRequest(_ args: RESPArguments, into out: inout [UInt8]) -> (Key, Value, UInt64?)? {
        guard let key = checkedKey(args.array(1), into: &out) else { return nil }
        var expiresAt: UInt64?
        var i = 3
        while i < args.count {
            let option = args[i].map { $0 | 0x20 }
            let isEX = option == Array("ex".utf8), isPX = option == Array("px".utf8)
            let isEXAT = option == Array("exat".utf8), isPXAT = option == Array("pxat".utf8)
            guard (isEX || isPX || isEXAT || isPXAT), expiresAt == nil, i + 1 < args.count else {
                RESPReply.error("ERR syntax error", into: &out)
                return nil
            }
            guard let n = parseDecimal(args[i + 1]) else {
                RESPReply.error("ERR value is not an integer or out of range", into: &out)
                return nil
            }
            guard n > 0, n < 1 << 46 else {
                RESPReply.error("ERR invalid expire time in 'set' command", into: &out)
                return nil
            }
            let now = service.nowMillis()
            if isEX { expiresAt = now + UInt64(n) * 1000 }
            if isPX { expiresAt = now + UInt64(n) }
            if isEXAT { expiresAt = UInt64(n) * 1000 }
            if isPXAT { expiresAt = UInt64(n) }
            i += 2
        }
        let value = Value(args.array(2))
        do throws(KVError) {
            try service.limits.check(value: value)
        } catch {
            Self.reply(error, into: &out)
            return nil
        }
        return (key, value, expiresAt)
    }

    private func del(_ args: [[UInt8]], into out: inout [UInt8]) async {
        var deleted = 0
        for name in args.dropFirst() {
            guard let key = checkedKey(name, into: &out) else { return }
            switch await visible(key) {
            case .success(let found):
                do throws(KVError) {
                    _ = try await service.writeSoon(key, value: nil, expiresAtMillis: nil, consistency: .default)
                } catch {
                    Self.reply(error, into: &out)
                    return
                }
                if found != nil { deleted += 1 }
            case .failure(let e):
                Self.reply(e, into: &out)
                return
            }
        }
        RESPReply.integer(deleted, into: &out)
    }

    private func exists(_ args: [[UInt8]], into out: inout [UInt8]) async {
        var count = 0
        for name in args.dropFirst() {
            guard let key = checkedKey(name, into: &out) else { return }
            switch await visible(key) {
            case .success(let found): if found != nil { count += 1 }
            case .failure(let e):
                Self.reply(e, into: &out)
                return
            }
        }
        RESPReply.integer(count, into: &out)
    }

    private func mget(_ args: [[UInt8]], into out: inout [UInt8]) async {
        var values: [Value?] = []
        values.reserveCapacity(args.count - 1)
        for name in args.dropFirst() {
            guard let key = checkedKey(name, into: &out) else { return }
            switch await visible(key) {
            case .success(let found): values.append(found?.1)
            case .failure(let e):
                Self.reply(e, into: &out)
                return
            }
        }
        RESPReply.arrayHeader(values.count, into: &out)
        for v in values {
            if let v { RESPReply.bulk(v.bytes, into: &out) } else { out.append(contentsOf: RESPReply.nullBulk) }
        }
    }

    private func mset(_ args: [[UInt8]], into out: inout [UInt8]) async {
        guard args.count % 2 == 1 else {
            RESPReply.error("ERR wrong number of arguments for 'mset' command", into: &out)
            return
        }
        var items: [(Key, Value)] = []
        items.reserveCapacity(args.count / 2)
        var i = 1
        while i < args.count {
            guard let key = checkedKey(args[i], into: &out) else { return }
            let value = Value(args[i + 1])
            do throws(KVError) {
                try service.limits.check(value: value)
            } catch {
                Self.reply(error, into: &out)
                return
            }
            items.append((key, value))
            i += 2
        }
        do throws(KVError) {
            _ = try await service.writeMany(items)
            out.append(contentsOf: RESPReply.ok)
        } catch {
            Self.reply(error, into: &out)
        }
    }

    private func ttl(_ name: [UInt8], millis: Bool, into out: inout [UInt8]) async {
        guard let key = checkedKey(name, into: &out) else { return }
        switch await visible(key) {
        case .success(nil): RESPReply.integer(-2, into: &out)
        case .success(let found?):
            guard let expires = found.0.expiresAtMillis else {
                RESPReply.integer(-1, into: &out)
                return
            }
            let now = service.nowMillis()
            let remaining = expires > now ? Int(expires - now) : 0
            // Redis rounds TTL to the nearest second.
            RESPReply.integer(millis ? remaining : (remaining + 500) / 1000, into: &out)
        case .failure(let e): Self.reply(e, into: &out)
        }
    }

    private func info(_ args: [[UInt8]], into out: inout [UInt8]) async {
        let wanted = Set(args.dropFirst().map { String(decoding: $0, as: UTF8.self).lowercased() })
        let all = wanted.isEmpty || wanted.contains("all") || wanted.contains("everything") || wanted.contains("default")
        let stats = await service.statistics()
        let now = service.nowMillis()
        var text = ""
        if all || wanted.contains("server") {
            text += "# Server\r\n"
            text += "redis_version:7.0.0\r\n"
            text += "kvd_version:\(serverInfo.version)\r\n"
            text += "redis_mode:standalone\r\n"
            text += "os:Linux\r\n"
            text += "process_id:\(serverInfo.processID)\r\n"
            text += "tcp_port:\(serverInfo.respPort)\r\n"
            text += "http_port:\(serverInfo.httpPort)\r\n"
            text += "uptime_in_seconds:\((now &- counters.startedAtMillis) / 1000)\r\n"
            text += "event_loops:\(serverInfo.loops)\r\n"
            text += "shards:\(stats.shards)\r\n"
            text += "\r\n"
        }
        if all || wanted.contains("clients") {
            text += "# Clients\r\n"
            text += "connected_clients:\(counters.connectedClients.load(ordering: .relaxed))\r\n"
            text += "\r\n"
        }
        if all || wanted.contains("persistence") {
            text += "# Persistence\r\n"
            text += "loading:0\r\n"
            text += "commit_mode:\(serverInfo.commitMode)\r\n"
            text += "\r\n"
        }
        if all || wanted.contains("stats") {
            text += "# Stats\r\n"
            text += "total_connections_received:\(counters.connectionsReceived.load(ordering: .relaxed))\r\n"
            text += "total_commands_processed:\(counters.commandsProcessed.load(ordering: .relaxed))\r\n"
            text += "total_http_requests:\(counters.httpRequests.load(ordering: .relaxed))\r\n"
            text += "rejected_connections:\(counters.connectionsRejected.load(ordering: .relaxed))\r\n"
            text += "\r\n"
        }
        if all || wanted.contains("keyspace") {
            text += "# Keyspace\r\n"
            if stats.storedEntries > 0 { text += "db0:keys=\(stats.storedEntries),expires=0,avg_ttl=0\r\n" }
        }
        RESPReply.bulk(text, into: &out)
    }

    private func commandInfo(_ args: [[UInt8]], into out: inout [UInt8]) {
        func entry(_ c: RESPCommand) {
            RESPReply.arrayHeader(6, into: &out)
            RESPReply.bulk(c.rawValue, into: &out)
            RESPReply.integer(c.arity, into: &out)
            RESPReply.arrayHeader(c.flags.count, into: &out)
            for f in c.flags { RESPReply.simple(f, into: &out) }
            let spec = c.keySpec
            RESPReply.integer(spec.first, into: &out)
            RESPReply.integer(spec.last, into: &out)
            RESPReply.integer(spec.step, into: &out)
        }
        guard args.count > 1 else {
            RESPReply.arrayHeader(RESPCommand.allCases.count, into: &out)
            for c in RESPCommand.allCases { entry(c) }
            return
        }
        switch String(decoding: args[1], as: UTF8.self).lowercased() {
        case "count":
            RESPReply.integer(RESPCommand.allCases.count, into: &out)
        case "docs":
            // No documentation is served; redis-cli then uses its built-in help.
            RESPReply.arrayHeader(0, into: &out)
        case "list":
            RESPReply.arrayHeader(RESPCommand.allCases.count, into: &out)
            for c in RESPCommand.allCases { RESPReply.bulk(c.rawValue, into: &out) }
        case "info":
            RESPReply.arrayHeader(args.count - 2, into: &out)
            for name in args.dropFirst(2) {
                if let c = RESPCommand(name: name) { entry(c) } else { out.append(contentsOf: "*-1\r\n".utf8) }
            }
        default:
            RESPReply.error("ERR unknown subcommand '\(Self.printable(args[1]))'. Try COMMAND HELP.", into: &out)
        }
    }

    private func config(_ args: [[UInt8]], into out: inout [UInt8]) {
        guard String(decoding: args[1], as: UTF8.self).lowercased() == "get", args.count >= 3 else {
            RESPReply.error("ERR CONFIG supports only GET in kvd", into: &out)
            return
        }
        // What redis-benchmark and client libraries ask for; anything else is an empty answer.
        let known: [String: String] = ["save": "", "appendonly": "no", "databases": "1"]
        var pairs: [(String, String)] = []
        for pattern in args.dropFirst(2) {
            let p = String(decoding: pattern, as: UTF8.self).lowercased()
            if p == "*" {
                pairs.append(contentsOf: known.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            } else if let v = known[p] {
                pairs.append((p, v))
            }
        }
        RESPReply.arrayHeader(pairs.count * 2, into: &out)
        for (k, v) in pairs {
            RESPReply.bulk(k, into: &out)
            RESPReply.bulk(v, into: &out)
        }
    }

    /// Bytes as text for an error message: at most 64 bytes, control bytes as '?'.
    static func printable(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(64).map { $0 < 32 || $0 == 127 || $0 == UInt8(ascii: "'") ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }
}

/// What a RESP connection does after a command.
public enum RESPOutcome: Sendable, Equatable {
    case keepOpen
    /// `QUIT`: send the replies, then close.
    case close
}

/// A command that has to wait for the service, parsed and checked: what
/// `RESPCommands.start` hands to `finish`. (Not nested in the generic `RESPCommands`, so
/// the connection's session, which is not generic, holds it without type metadata lookups.)
enum RESPWaitingCommand {
    case get(Key)
    case set(Key, Value, expiresAtMillis: UInt64?)
    /// DEL, EXISTS, MGET, MSET, TTL, PTTL and INFO, which may read or write several keys.
    case other(RESPCommand, [[UInt8]])
}

/// What `RESPCommands.start` did with a command.
enum RESPStarted {
    /// Answered (its reply is in `out`).
    case done(RESPOutcome)
    /// It must wait for the service: nothing was done or appended; `finish` it.
    case waiting(RESPWaitingCommand)
}

/// Static facts `INFO server` reports.
public struct RESPServerInfo: Sendable {
    /// kvd's version.
    public var version: String
    /// The server's process id.
    public var processID: Int32
    /// The bound RESP port.
    public var respPort: Int
    /// The bound HTTP port.
    public var httpPort: Int
    /// Event loops (= shards).
    public var loops: Int
    /// The storage commit mode, as text.
    public var commitMode: String

    public init(version: String, processID: Int32, respPort: Int, httpPort: Int, loops: Int, commitMode: String) {
        self.version = version
        self.processID = processID
        self.respPort = respPort
        self.httpPort = httpPort
        self.loops = loops
        self.commitMode = commitMode
    }
}
