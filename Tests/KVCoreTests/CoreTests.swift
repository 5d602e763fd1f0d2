import Testing
@testable import KVCore

@Suite struct CRC32CTests {
    // RFC 3720 appendix B.4 and the common "123456789" check value.
    @Test func publishedVectors() {
        let cases: [([UInt8], UInt32)] = [
            (Array("123456789".utf8), 0xE306_9283),
            ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
            ((0..<32).map { UInt8($0) }, 0x46DD_794E),
            ((0..<32).map { UInt8(31 - $0) }, 0x113F_DB5C),
        ]
        for (input, expected) in cases {
            #expect(CRC32C.checksum(input) == expected)
            #expect(input.withUnsafeBytes { CRC32C.software($0) } == expected)
        }
    }

    @Test func incrementalEqualsWhole() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let a = CRC32C.checksum(Array(data[..<split]))
            #expect(CRC32C.checksum(Array(data[split...]), continuing: a) == whole)
        }
    }
}

@Suite struct TokenTests {
    // Published XXH64 test values (seed 0) and values from the reference implementation.
    @Test func xxh64Vectors() {
        let cases: [(String, UInt64)] = [
            ("", 0xEF46_DB37_51D8_E999),
            ("a", 0xD24E_C4F1_A98C_6E5B),
            ("abc", 0x44BC_2CF5_AD77_0999),
            ("message digest", 0x066E_D728_FCEE_B3BE),
            ("abcdefghijklmnopqrstuvwxyz", 0xCFE1_F278_FA89_835C),
        ]
        for (s, expected) in cases {
            #expect(Key(s).token.rawValue == expected, "\(s)")
        }
        let hundred = (0..<100).map { UInt8($0) }
        #expect(hundred.withUnsafeBytes { XXH64.hash($0) } == 0x6AC1_E580_3216_6597)
        #expect(hundred.withUnsafeBytes { XXH64.hash($0, seed: 1) } == 0x3D19_A3A2_098A_7023)
    }
}

@Suite struct HybridLogicalClockTests {
    @Test func monotonicWhenWallClockStallsOrGoesBack() {
        var clock = HybridLogicalClock()
        let a = clock.now(wallMillis: 1000)
        let b = clock.now(wallMillis: 1000)
        let c = clock.now(wallMillis: 900)
        let d = clock.now(wallMillis: 1001)
        #expect(a < b && b < c && c < d)
        #expect(a == Timestamp(physicalMillis: 1000, logical: 0))
        #expect(c == Timestamp(physicalMillis: 1000, logical: 2))
        #expect(d == Timestamp(physicalMillis: 1001, logical: 0))
    }

    @Test func logicalOverflowCarriesIntoPhysical() {
        var clock = HybridLogicalClock(last: Timestamp(physicalMillis: 50, logical: .max))
        #expect(clock.now(wallMillis: 10) == Timestamp(physicalMillis: 51, logical: 0))
    }

    @Test func receiveMovesPastRemote() throws {
        var clock = HybridLogicalClock(maxForwardDriftMillis: 500)
        _ = clock.now(wallMillis: 1000)
        let remote = Timestamp(physicalMillis: 1300, logical: 7)
        let merged = try clock.receive(remote, wallMillis: 1000)
        #expect(merged > remote)
        #expect(clock.now(wallMillis: 1000) > merged)
    }

    @Test func rejectsTimestampsTooFarAhead() {
        var clock = HybridLogicalClock(maxForwardDriftMillis: 500)
        let remote = Timestamp(physicalMillis: 1501, logical: 0)
        #expect(throws: KVError.clockSkew(remoteMillis: 1501, localMillis: 1000, maxDriftMillis: 500)) {
            try clock.receive(remote, wallMillis: 1000)
        }
        // The rejected timestamp did not move the clock.
        #expect(clock.now(wallMillis: 1000) == Timestamp(physicalMillis: 1000, logical: 0))
    }
}

@Suite struct RecordTests {
    let t1 = Timestamp(physicalMillis: 1, logical: 0)
    let t2 = Timestamp(physicalMillis: 2, logical: 0)

    @Test func newerTimestampWins() {
        let old = Record.value(Value("a"), at: t1)
        let new = Record.tombstone(at: t2)
        #expect(Record.newest(old, new) == new)
        #expect(Record.newest(new, old) == new)
    }

    @Test func tiesBreakDeterministically() {
        let v = Record.value(Value("a"), at: t1)
        let w = Record.value(Value("b"), at: t1)
        let dead = Record.tombstone(at: t1)
        #expect(Record.newest(v, dead) == dead && Record.newest(dead, v) == dead)
        #expect(Record.newest(v, w) == w && Record.newest(w, v) == w)
    }

    @Test func expiry() {
        let r = Record.value(Value("x"), at: t1, expiresAtMillis: 100)
        #expect(r.visibleValue(nowMillis: 99) == Value("x"))
        #expect(r.visibleValue(nowMillis: 100) == nil)
        #expect(Record.tombstone(at: t1).visibleValue(nowMillis: 0) == nil)
    }
}

@Suite struct LimitsTests {
    @Test func edges() throws {
        let limits = Limits(maxKeyBytes: 4, maxValueBytes: 3)
        try limits.check(key: Key([1, 2, 3, 4]))
        #expect(throws: KVError.keyTooLarge(size: 5, limit: 4)) { try limits.check(key: Key([1, 2, 3, 4, 5])) }
        #expect(throws: KVError.emptyKey) { try limits.check(key: Key([])) }
        try limits.check(value: Value([]))
        try limits.check(value: Value([0, 0, 0]))
        #expect(throws: KVError.valueTooLarge(size: 4, limit: 3)) { try limits.check(value: Value([0, 0, 0, 0])) }
    }
}

@Suite struct ByteCodingTests {
    @Test func roundTrip() throws {
        var w = ByteWriter()
        w.write(littleEndian: UInt32(0xDEAD_BEEF))
        w.write(varint: 0)
        w.write(varint: 300)
        w.write(varint: .max)
        w.write(lengthPrefixed: [1, 2, 3])
        try w.bytes.withUnsafeBytes { raw throws in
            var r = ByteReader(raw)
            #expect(try r.read(littleEndian: UInt32.self) == 0xDEAD_BEEF)
            #expect(try r.readVarint() == 0)
            #expect(try r.readVarint() == 300)
            #expect(try r.readVarint() == .max)
            #expect(try r.readLengthPrefixed() == [1, 2, 3])
            #expect(r.isAtEnd)
            #expect(throws: ByteReader.Error.self) { try r.readByte() }
        }
    }

    @Test func rejectsMalformedVarint() {
        let bad = [UInt8](repeating: 0xFF, count: 11)
        bad.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            #expect(throws: ByteReader.Error.self) { try r.readVarint() }
        }
    }
}
