import KVCore

/// A node's (generation, version) as one gossip peer tells another: enough to
/// decide who holds the newer state without sending it.
public struct GossipDigest: Hashable, Sendable {
    public var id: NodeID
    public var generation: UInt64
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

/// One gossip message. A round is a three-way exchange (as in Cassandra):
///
/// 1. `syn`: the initiator sends digests of every state it knows.
/// 2. `ack`: the receiver sends back the states it holds newer than the initiator's
///    digests (and those the initiator did not mention), plus requests for the states
///    where the initiator's are newer: each request is a digest of the version the
///    receiver holds (generation 0, version 0 when it holds none).
/// 3. `ack2`: the initiator sends its states newer than each request.
///
/// Every message carries its sender's id and RPC address so the receiver can reply
/// even before it knows the sender (a node joining through a seed).
public struct GossipMessage: Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case syn(digests: [GossipDigest])
        case ack(states: [EndpointState], requests: [GossipDigest])
        case ack2(states: [EndpointState])
    }

    public var from: NodeID
    public var fromAddress: NodeAddress
    public var body: Body

    public init(from: NodeID, fromAddress: NodeAddress, body: Body) {
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
/// message   format   u8       1
///           kind     u8       1 = syn, 2 = ack, 3 = ack2
///           from     string   sender's node id
///           address  address  sender's RPC address
///           body     (by kind)
/// syn       count varint, then count × digest
/// ack       count varint, then count × state; count varint, then count × digest
/// ack2      count varint, then count × state
/// address   host string, port u16
/// digest    id string, generation varint, version varint
/// state     id string, generation varint, version varint, status u8 (0 joining,
///           1 normal, 2 leaving, 3 left), address, hasRack u8 (0 / 1),
///           rack string (only when hasRack = 1), tokenCount varint,
///           tokenCount × token u64
/// ```
/// A decoder rejects unknown formats, kinds and statuses, counts larger than the
/// bytes left, and trailing bytes.
public enum GossipCodec {
    static let format: UInt8 = 1

    /// The bytes of `message`. O(size).
    public static func encode(_ message: GossipMessage) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.write(format)
        switch message.body {
        case .syn: w.write(UInt8(1))
        case .ack: w.write(UInt8(2))
        case .ack2: w.write(UInt8(3))
        }
        w.write(lengthPrefixed: Array(message.from.name.utf8))
        write(message.fromAddress, into: &w)
        switch message.body {
        case let .syn(digests):
            write(digests, into: &w)
        case let .ack(states, requests):
            write(states, into: &w)
            write(requests, into: &w)
        case let .ack2(states):
            write(states, into: &w)
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
        let from = NodeID(try string(&r))
        let address = try readAddress(&r)
        let body: GossipMessage.Body
        switch kind {
        case 1: body = .syn(digests: try readDigests(&r))
        case 2:
            let states = try readStates(&r)
            body = .ack(states: states, requests: try readDigests(&r))
        case 3: body = .ack2(states: try readStates(&r))
        default: throw GossipCodecError.unknownKind(kind)
        }
        guard r.isAtEnd else { throw GossipCodecError.trailingBytes(r.remaining) }
        return GossipMessage(from: from, fromAddress: address, body: body)
    }

    private static func write(_ address: NodeAddress, into w: inout ByteWriter) {
        w.write(lengthPrefixed: Array(address.host.utf8))
        w.write(littleEndian: address.port)
    }

    private static func write(_ digests: [GossipDigest], into w: inout ByteWriter) {
        w.write(varint: UInt64(digests.count))
        for d in digests {
            w.write(lengthPrefixed: Array(d.id.name.utf8))
            w.write(varint: d.generation)
            w.write(varint: d.version)
        }
    }

    private static func write(_ states: [EndpointState], into w: inout ByteWriter) {
        w.write(varint: UInt64(states.count))
        for s in states {
            w.write(lengthPrefixed: Array(s.id.name.utf8))
            w.write(varint: s.generation)
            w.write(varint: s.version)
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
        for _ in 0..<n {
            let id = NodeID(try string(&r))
            let generation = try r.readVarint()
            digests.append(GossipDigest(id: id, generation: generation, version: try r.readVarint()))
        }
        return digests
    }

    private static func readStates(_ r: inout ByteReader) throws -> [EndpointState] {
        let n = try count(&r, minSize: 8)
        var states: [EndpointState] = []
        states.reserveCapacity(n)
        for _ in 0..<n {
            let id = NodeID(try string(&r))
            let generation = try r.readVarint()
            let version = try r.readVarint()
            let rawStatus = try r.readByte()
            guard let status = NodeStatus(rawValue: rawStatus) else { throw GossipCodecError.unknownStatus(rawStatus) }
            let address = try readAddress(&r)
            let rack: String? = try r.readByte() != 0 ? try string(&r) : nil
            let tokenCount = try count(&r, minSize: 8)
            var tokens: [Token] = []
            tokens.reserveCapacity(tokenCount)
            for _ in 0..<tokenCount { tokens.append(Token(rawValue: try r.read(littleEndian: UInt64.self))) }
            states.append(
                EndpointState(
                    id: id, generation: generation, version: version, status: status, address: address, rack: rack,
                    tokens: tokens))
        }
        return states
    }
}
