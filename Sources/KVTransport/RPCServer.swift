import KVRuntime
import Logging

/// The serving side of TCP RPC: a listener whose connections carry request frames. Each
/// request runs as a child task on the connection's loop, so slow requests do not hold up
/// fast ones and replies go out in completion order (the peer matches them by request id);
/// the methods `runsInline` picks run in the read loop itself, isolated to the loop.
public final class RPCServer: Sendable {
    public let listener: TCPListener
    public let settings: RPCSettings
    private let handler: RPCHandler
    private let runsInline: RPCInlinePolicy

    private init(listener: TCPListener, settings: RPCSettings, runsInline: @escaping RPCInlinePolicy, handler: @escaping RPCHandler) {
        self.listener = listener
        self.settings = settings
        self.runsInline = runsInline
        self.handler = handler
    }

    /// Binds `host:port` (port 0: ephemeral) on `group`. Call `run()` to serve.
    public static func bind(
        host: String, port: Int, group: EventLoopGroup, settings: RPCSettings = RPCSettings(),
        logger: Logger = Logger(label: "kvd.rpc"), runsInline: @escaping RPCInlinePolicy = { _ in false },
        handler: @escaping RPCHandler
    ) throws(TransportError) -> RPCServer {
        let listener = try TCPListener.bind(host: host, port: port, group: group, settings: settings.tcp, logger: logger)
        return RPCServer(listener: listener, settings: settings, runsInline: runsInline, handler: handler)
    }

    /// The bound port.
    public var localPort: Int { listener.localPort }

    /// Serves connections until `shutdown`, then returns once in-flight requests are done.
    public func run() async {
        let handler = self.handler, runsInline = self.runsInline, maxFrameBytes = settings.maxFrameBytes
        await listener.run { connection in
            await Self.serve(connection, handler: handler, runsInline: runsInline, maxFrameBytes: maxFrameBytes)
        }
    }

    /// Stops accepting; open connections get `settings.shutdownGracePeriod` to finish.
    public func shutdown() { listener.shutdown(gracePeriod: settings.shutdownGracePeriod) }

    private static func serve(
        _ connection: TCPConnection, handler: @escaping RPCHandler, runsInline: @escaping RPCInlinePolicy, maxFrameBytes: Int
    ) async {
        await connection.loop.isolation.run { loop in
            await serve(connection, handler: handler, runsInline: runsInline, maxFrameBytes: maxFrameBytes, on: loop)
        }
    }

    /// The read loop, isolated to the connection's loop by an explicit parameter: a task
    /// group's body closure does not inherit a `nonisolated(nonsending)` caller's isolation,
    /// but does inherit an actor's, so inline requests reach that loop's actors in place.
    private static func serve(
        _ connection: TCPConnection, handler: @escaping RPCHandler, runsInline: RPCInlinePolicy, maxFrameBytes: Int,
        on loop: isolated LoopIsolation
    ) async {
        await withDiscardingTaskGroup { requests in
            _ = loop  // captured, so the body is isolated to it
            var decoder = RPCFrameDecoder(maxFrameBytes: maxFrameBytes)
            reading: while true {
                guard let bytes = try? await connection.read(), !bytes.isEmpty else { break }
                decoder.append(bytes)
                do {
                    while let frame = try decoder.next() {
                        switch frame.kind {
                        case .request where runsInline(frame.method):
                            await answer(frame, on: connection, handler: handler)
                        case .request:
                            requests.addTask { await answer(frame, on: connection, handler: handler) }
                        case .oneWay:
                            requests.addTask { _ = try? await handler(RPCRequest(method: frame.method, payload: frame.payload)) }
                        case .response, .failure:
                            continue  // Replies are not expected on a serving connection; ignore them.
                        }
                    }
                } catch {
                    connection.abort()  // The stream cannot be trusted past a bad frame.
                    break reading
                }
            }
        }
    }

    private static func answer(_ request: RPCFrame, on connection: TCPConnection, handler: RPCHandler) async {
        let reply: RPCFrame
        do {
            let payload = try await handler(RPCRequest(method: request.method, payload: request.payload))
            reply = RPCFrame(kind: .response, method: request.method, requestID: request.requestID, payload: payload)
        } catch {
            reply = RPCFrame(
                kind: .failure, method: request.method, requestID: request.requestID,
                payload: Array(String(describing: error).utf8))
        }
        try? await connection.write(reply.encoded())
    }
}
