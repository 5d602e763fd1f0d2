import KVCore
import Testing
@testable import KVStorage

@Suite struct EntryCodecTests {
    @Test func roundTripsEveryShape() throws {
        let t = Timestamp(physicalMillis: 1_713_400_000_000, logical: 3)
        let records: [Record] = [
            .value(Value("hello"), at: t),
            .value(Value([]), at: t, expiresAtMillis: 42),
            .tombstone(at: t),
        ]
        var w = ByteWriter()
        for r in records { EntryCodec.encode(key: Key([0, 255, 7]), record: r, into: &w) }
        try w.bytes.withUnsafeBytes { raw throws in
            var reader = ByteReader(raw)
            for r in records {
                let (k, decoded) = try EntryCodec.decode(from: &reader)
                #expect(k == Key([0, 255, 7]))
                #expect(decoded == r)
            }
            #expect(reader.isAtEnd)
        }
    }

    @Test func rejectsTruncationAndBadFlags() {
        var w = ByteWriter()
        EntryCodec.encode(key: Key("k"), record: .value(Value("v"), at: .zero), into: &w)
        for cut in 0..<w.count {
            Array(w.bytes[..<cut]).withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                #expect(throws: EntryCodecError.self) { try EntryCodec.decode(from: &reader) }
            }
        }
        [UInt8(0x80)].withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(throws: EntryCodecError.badFlags(0x80)) { try EntryCodec.decode(from: &reader) }
        }
    }
}
