import KVCore

/// A node's (generation, version) as one gossip peer tells another: enough to
/// decide who holds the newer state without sending it.
public struct GossipDigest: Hashable, Sendable {
    /// The node described.
    public var id: NodeID
    /// Its incarnation (0 in a request: "I hold nothing").
    public var generation: UInt64
    /// Its heartbeat version within the generation.
    public var version: UInt64

    public init(id: NodeID, generation: UInt64, version: UInt64) {
        self.id = id
        self.generation = generation
        self.version = version
    }

    /// True when this digest names a newer state than `other` (same rule as `EndpointState`).
    @inlinable public func isNewer(than other: GossipDigest) -> Bool {
        (generation, version) > (other.generation, other.version)
    }
}

/// One node's news in an `ack` or `ack2`: its whole state, or, when the receiver is
/// known to hold its current status, address, rack and tokens already, just its new
/// heartbeat version (a few bytes instead of ~2 KiB for 256 tokens).
public enum GossipUpdate: Hashable, Sendable {
    case state(EndpointState)
    case heartbeat(GossipDigest)

    /// The node the update is about.
    public var id: NodeID {
        switch self {
        case let .state(s): s.id
        case let .heartbeat(d): d.id
        }
    }

    /// The smallest update that brings a peer holding `held` (nil: nothing) up to `state`.
    public static func bringing(_ held: GossipDigest?, to state: EndpointState) -> GossipUpdate {
        if let held, held.generation == state.generation, held.version >= state.stateVersion {
            return .heartbeat(state.digest)
        }
        return .state(state)
    }
}

/// One gossip message. A round is a three-way exchange (as in Cassandra):
///
/// 1. `syn`: the initiator sends digests of every state it knows.
/// 2. `ack`: the receiver sends back the states it holds newer than the initiator's
///    digests (and those the initiator did not mention), plus requests for the states
///    where the initiator's are newer: each request is a digest of the version the
///    receiver holds (generation 0, version 0 when it holds none). The initiator's own
///    state is always requested, even when the receiver's copy is current, so the
///    initiator learns which of its versions the receiver holds.
/// 3. `ack2`: the initiator sends its states newer than each request.
///
/// States travel as `GossipUpdate`s: heartbeat-only when the peer already has the rest.
///
/// Every message carries its sender's id and RPC address so the receiver can reply
/// even before it knows the sender (a node joining through a seed), and the name of
/// the sender's cluster: a receiver drops messages from another cluster.
public struct GossipMessage: Hashable, Sendable {
    /// The three message kinds of an exchange.
    public enum Body: Hashable, Sendable {
        case syn(digests: [GossipDigest])
        case ack(updates: [GossipUpdate], requests: [GossipDigest])
        case ack2(updates: [GossipUpdate])
    }

    /// The sender's cluster (`ClusterSettings.name`).
    public var clusterName: String
    /// The sender's id.
    public var from: NodeID
    /// Where the sender listens: replies go there.
    public var fromAddress: NodeAddress
    /// The kind and contents.
    public var body: Body

    public init(clusterName: String = ClusterSettings.defaultName, from: NodeID, fromAddress: NodeAddress, body: Body) {
        self.clusterName = clusterName
        self.from = from
        self.fromAddress = fromAddress
        self.body = body
    }
}

/// Why bytes could not be decoded as a gossip message.
public enum GossipCodecError: Error, Sendable, Equatable {
    case unsupportedFormat(UInt8)
    case unknownKind(UInt8)
    case unknownStatus(UInt8)
    case unknownUpdate(UInt8)
    case stateVersionAheadOfVersion
    case invalidUTF8
    case countTooLarge(UInt64)
    case trailingBytes(Int)
    case malformed(ByteReader.Error)
}

/// The binary encoding of `GossipMessage` (carried as the payload of an RPC frame).
///
/// All integers little-endian; `varint` is unsigned LEB128; `string` is a varint
/// byte length followed by UTF-8 bytes.
///
/// ```
/// message   format   u8       2 (format 1, without the cluster name, is refused)
///           kind     u8       1 = syn, 2 = ack, 3 = ack2
///           cluster  string   sender's cluster name
///           from     string   sender's node id
///           address  address  sender's RPC address
///           body     (by kind)
/// syn       count varint, then count × digest
/// ack       count varint, then count × update; count varint, then count × digest
/// ack2      count varint, then count × update
/// update    tag u8: 0 = state, followed by a state; 1 = heartbeat, followed by a digest
/// address   host string, port u16
/// digest    id string, generation varint, version varint
/// state     id string, generation varint, version varint, stateVersion varint,
///           status u8 (0 joining,
///           1 normal, 2 leaving, 3 left), address, hasRack u8 (0 / 1),
///           rack string (only when hasRack = 1), tokenCount varint,
///           tokenCount × token u64
/// ```
/// A decoder rejects unknown formats, kinds and statuses, counts larger than the
/// bytes left, and trailing bytes.
public enum GossipCodec {
    /// 2 since messages carry the cluster name (1 did not: such a node cannot take part).
    static let format: UInt8 = 2

    /// The bytes of `message`. O(size).
    public static func encode(_ message: GossipMessage) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.write(format)
        switch message.body {
        case .syn: w.write(UInt8(1))
        case .ack: w.write(UInt8(2))
        case .ack2: w.write(UInt8(3))
        }
        w.write(lengthPrefixed: Array(message.clusterName.utf8))
        w.write(lengthPrefixed: Array(message.from.name.utf8))
        write(message.fromAddress, into: &w)
        switch message.body {
        case let .syn(digests):
            write(digests, into: &w)
        case let .ack(updates, requests):
            write(updates, into: &w)
            write(requests, into: &w)
        case let .ack2(updates):
            write(updates, into: &w)
        }
        return w.bytes
    }

    /// Decodes one whole message; throws on anything malformed, never traps.
    public static func decode(_ bytes: [UInt8]) throws(GossipCodecError) -> GossipMessage {
        do {
            return try bytes.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                return try readMessage(&r)
            }
        } catch let e as GossipCodecError {
            throw e
        } catch let e as ByteReader.Error {
            throw .malformed(e)
        } catch {
            throw .malformed(.malformedVarint)  // unreachable: the readers throw only the two types above
        }
    }

    private static func readMessage(_ r: inout ByteReader) throws -> GossipMessage {
        let f = try r.readByte()
        guard f == format else { throw GossipCodecError.unsupportedFormat(f) }
        let kind = try r.readByte()
        let clusterName = try string(&r)
        let from = NodeID(try string(&r))
        let address = try readAddress(&r)
        let body: GossipMessage.Body
        switch kind {
        case 1: body = .syn(digests: try readDigests(&r))
        case 2:
            let updates = try readUpdates(&r)
            body = .ack(updates: updates, requests: try readDigests(&r))
        case 3: body = .ack2(updates: try readUpdates(&r))
        default: throw GossipCodecError.unknownKind(kind)
        }
        guard r.isAtEnd else { throw GossipCodecError.trailingBytes(r.remaining) }
        return GossipMessage(clusterName: clusterName, from: from, fromAddress: address, body: body)
    }

    private static func write(_ address: NodeAddress, into w: inout ByteWriter) {
        w.write(lengthPrefixed: Array(address.host.utf8))
        w.write(littleEndian: address.port)
    }

    private static func write(_ digests: [GossipDigest], into w: inout ByteWriter) {
        w.write(varint: UInt64(digests.count))
        for d in digests { write(d, into: &w) }
    }

    private static func write(_ d: GossipDigest, into w: inout ByteWriter) {
        w.write(lengthPrefixed: Array(d.id.name.utf8))
        w.write(varint: d.generation)
        w.write(varint: d.version)
    }

    private static func write(_ updates: [GossipUpdate], into w: inout ByteWriter) {
        w.write(varint: UInt64(updates.count))
        for u in updates {
            switch u {
            case let .state(s):
                w.write(UInt8(0))
                write(s, into: &w)
            case let .heartbeat(d):
                w.write(UInt8(1))
                write(d, into: &w)
            }
        }
    }

    private static func write(_ s: EndpointState, into w: inout ByteWriter) {
        w.write(lengthPrefixed: Array(s.id.name.utf8))
        w.write(varint: s.generation)
        w.write(varint: s.version)
        w.write(varint: s.stateVersion)
        w.write(s.status.rawValue)
        write(s.address, into: &w)
        if let rack = s.rack {
            w.write(UInt8(1))
            w.write(lengthPrefixed: Array(rack.utf8))
        } else {
            w.write(UInt8(0))
        }
        w.write(varint: UInt64(s.tokens.count))
        for t in s.tokens { w.write(littleEndian: t.rawValue) }
    }

    private static func string(_ r: inout ByteReader) throws -> String {
        let bytes = try r.readLengthPrefixed()
        guard let s = String(validating: bytes, as: UTF8.self) else { throw GossipCodecError.invalidUTF8 }
        return s
    }

    /// A count that cannot exceed the bytes left (each element takes at least `minSize`).
    private static func count(_ r: inout ByteReader, minSize: Int) throws -> Int {
        let n = try r.readVarint()
        guard n <= UInt64(r.remaining / minSize) else { throw GossipCodecError.countTooLarge(n) }
        return Int(n)
    }

    private static func readAddress(_ r: inout ByteReader) throws -> NodeAddress {
        let host = try string(&r)
        return NodeAddress(host: host, port: try r.read(littleEndian: UInt16.self))
    }

    private static func readDigests(_ r: inout ByteReader) throws -> [GossipDigest] {
        let n = try count(&r, minSize: 3)
        var digests: [GossipDigest] = []
        digests.reserveCapacity(n)
        for _ in 0..<n { digests.append(try readDigest(&r)) }
        return digests
    }

    private static func readDigest(_ r: inout ByteReader) throws -> GossipDigest {
        let id = NodeID(try string(&r))
        let generation = try r.readVarint()
        return GossipDigest(id: id, generation: generation, version: try r.readVarint())
    }

    private static func readUpdates(_ r: inout ByteReader) throws -> [GossipUpdate] {
        let n = try count(&r, minSize: 4)
        var updates: [GossipUpdate] = []
        updates.reserveCapacity(n)
        for _ in 0..<n {
            let tag = try r.readByte()
            switch tag {
            case 0: updates.append(.state(try readState(&r)))
            case 1: updates.append(.heartbeat(try readDigest(&r)))
            default: throw GossipCodecError.unknownUpdate(tag)
            }
        }
        return updates
    }

    private static func readState(_ r: inout ByteReader) throws -> EndpointState {
        let id = NodeID(try string(&r))
        let generation = try r.readVarint()
        let version = try r.readVarint()
        let stateVersion = try r.readVarint()
        guard stateVersion <= version else { throw GossipCodecError.stateVersionAheadOfVersion }
        let rawStatus = try r.readByte()
        guard let status = NodeStatus(rawValue: rawStatus) else { throw GossipCodecError.unknownStatus(rawStatus) }
        let address = try readAddress(&r)
        let rack: String? = try r.readByte() != 0 ? try string(&r) : nil
        let tokenCount = try count(&r, minSize: 8)
        var tokens: [Token] = []
        tokens.reserveCapacity(tokenCount)
        for _ in 0..<tokenCount { tokens.append(Token(rawValue: try r.read(littleEndian: UInt64.self))) }
        return EndpointState(
            id: id, generation: generation, version: version, stateVersion: stateVersion, status: status,
            address: address, rack: rack, tokens: tokens)
    }
}
