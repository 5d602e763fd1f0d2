import KVCore
import Testing

@testable import KVCluster

@Suite struct GossipCodecTests {
    static let withRack = EndpointState(
        id: NodeID("node-ä"), generation: 1_700_000_000, version: 300, stateVersion: 12, status: .leaving,
        address: NodeAddress(host: "::1", port: 7001), rack: "r1", tokens: Ring.defaultTokens(for: NodeID("x"), count: 5))
    static let plain = EndpointState(
        id: NodeID("b"), generation: 1, version: 0, status: .joining, address: NodeAddress(host: "127.0.0.1", port: 9),
        tokens: [])
    static let messages: [GossipMessage] = [
        .init(from: NodeID("a"), fromAddress: .init(host: "h", port: 1), body: .syn(digests: [withRack.digest, plain.digest])),
        .init(from: NodeID("a"), fromAddress: .init(host: "h", port: 1), body: .syn(digests: [])),
        .init(from: NodeID("a"), fromAddress: .init(host: "h", port: 65535), body: .ack(updates: [.state(withRack), .state(plain), .heartbeat(withRack.digest)], requests: [plain.digest])),
        .init(from: NodeID("z"), fromAddress: .init(host: "h", port: 2), body: .ack2(updates: [.state(plain)])),
    ]

    @Test func roundTrips() throws {
        for m in Self.messages {
            #expect(try GossipCodec.decode(GossipCodec.encode(m)) == m)
        }
    }

    @Test func everyTruncationIsAnError() {
        for m in Self.messages {
            let bytes = GossipCodec.encode(m)
            for n in 0..<bytes.count {
                #expect(throws: GossipCodecError.self) { try GossipCodec.decode(Array(bytes[..<n])) }
            }
        }
    }

    @Test func rejectsMalformedInput() {
        let bytes = GossipCodec.encode(Self.messages[2])
        #expect(throws: GossipCodecError.trailingBytes(1)) { try GossipCodec.decode(bytes + [0]) }
        var badFormat = bytes
        badFormat[0] = 3
        #expect(throws: GossipCodecError.unsupportedFormat(3)) { try GossipCodec.decode(badFormat) }
        // Format 1 (before messages carried the cluster name) is refused.
        badFormat[0] = 1
        #expect(throws: GossipCodecError.unsupportedFormat(1)) { try GossipCodec.decode(badFormat) }
        var badKind = bytes
        badKind[1] = 9
        #expect(throws: GossipCodecError.self) { try GossipCodec.decode(badKind) }
        // A count claiming far more elements than bytes left.
        var w = ByteWriter()
        w.write(UInt8(2))
        w.write(UInt8(1))
        w.write(lengthPrefixed: Array("kvd".utf8))
        w.write(lengthPrefixed: Array("a".utf8))
        w.write(lengthPrefixed: Array("h".utf8))
        w.write(littleEndian: UInt16(1))
        w.write(varint: UInt64.max / 2)
        #expect(throws: GossipCodecError.countTooLarge(UInt64.max / 2)) { try GossipCodec.decode(w.bytes) }
        // Random garbage never traps.
        var rng = SeededRandom(seed: 5)
        for _ in 0..<2_000 {
            var junk = bytes
            junk[Int(rng.next() % UInt64(junk.count))] = UInt8(truncatingIfNeeded: rng.next())
            _ = try? GossipCodec.decode(junk)
        }
    }

    @Test func addressParsing() {
        #expect(NodeAddress(parsing: "127.0.0.1:7000") == NodeAddress(host: "127.0.0.1", port: 7000))
        #expect(NodeAddress(parsing: "[::1]:7000") == NodeAddress(host: "::1", port: 7000))
        #expect(NodeAddress(parsing: "db-1.local:1") == NodeAddress(host: "db-1.local", port: 1))
        #expect(NodeAddress(parsing: "nohost") == nil)
        #expect(NodeAddress(parsing: ":7000") == nil)
        #expect(NodeAddress(parsing: "h:70000") == nil)
        #expect(NodeAddress(host: "::1", port: 5).description == "[::1]:5")
    }
}
