import KVCluster
import KVCore
import KVStorage
import Testing

struct ClusterMessagesTests {
    @Test func replicaWriteRoundTrips() throws {
        let entries = [
            Entry(key: Key("a"), record: .value(Value("1"), at: Timestamp(rawValue: 42), expiresAtMillis: 99)),
            Entry(key: Key("b"), record: .tombstone(at: Timestamp(rawValue: 43))),
        ]
        for hint in [nil, NodeID("n7")] {
            let write = ReplicaWrite(entries: entries, hintFor: hint)
            #expect(try ClusterCodec.decodeWrite(ClusterCodec.encode(write)) == write)
        }
    }

    @Test func readAndPingRoundTrip() throws {
        #expect(try ClusterCodec.decodeRead(ClusterCodec.encodeRead(Key("k"))) == Key("k"))
        for record in [nil, Record.value(Value("v"), at: Timestamp(rawValue: 7)), .tombstone(at: Timestamp(rawValue: 8))] {
            let reply = ReplicaReadReply(record: record)
            #expect(try ClusterCodec.decodeReadReply(ClusterCodec.encode(reply)) == reply)
        }
        let ping = PingReply(node: NodeID("n1"), wallMillis: 123_456)
        #expect(try ClusterCodec.decodePingReply(ClusterCodec.encode(ping)) == ping)
    }

    @Test func layoutIsAsDocumented() {
        // format 1, no hint, one entry: flags 0, key "k", timestamp 5, value "v".
        let bytes = ClusterCodec.encode(ReplicaWrite(entries: [Entry(key: Key("k"), record: .value(Value("v"), at: Timestamp(rawValue: 5)))]))
        #expect(bytes == [1, 0, 1, 0, 1, 0x6B, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0x76])
    }

    @Test func malformedInputIsRejectedNotTrapped() {
        let good = ClusterCodec.encode(ReplicaWrite(entries: [Entry(key: Key("k"), record: .tombstone(at: Timestamp(rawValue: 1)))], hintFor: NodeID("x")))
        #expect(throws: ClusterCodecError.unsupportedFormat(2)) { try ClusterCodec.decodeWrite([2] + good.dropFirst()) }
        #expect(throws: ClusterCodecError.badFlag(9)) { try ClusterCodec.decodeWrite([1, 9]) }
        #expect(throws: ClusterCodecError.trailingBytes(1)) { try ClusterCodec.decodeWrite(good + [0]) }
        #expect(throws: ClusterCodecError.countTooLarge(1000)) { try ClusterCodec.decodeWrite([1, 0, 0xE8, 0x07, 0, 0]) }
        for cut in 0..<good.count {
            #expect(throws: (any Error).self) { try ClusterCodec.decodeWrite(Array(good.prefix(cut))) }
        }
    }
}
