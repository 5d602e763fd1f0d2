import Foundation
import KVCore
import Testing
@testable import KVStorage

/// Damaged files must never yield wrong data or crash: every read either returns
/// exactly what was written or throws `KVError.corruption`.
@Suite struct SSTableCorruptionTests {
    let entries: [Entry] = {
        var random = TestRandom(seed: 31)
        return sortedEntries(
            (0..<60).map { i in
                let record: Record =
                    i % 7 == 0
                    ? .tombstone(at: ts(UInt64(i)))
                    : .value(Value(random.bytes(Int(random.next() % 40))), at: ts(UInt64(i)), expiresAtMillis: i % 3 == 0 ? 99 : nil)
                return Entry(key: Key(random.bytes(1 + Int(random.next() % 12))), record: record)
            })
    }()

    func isCorruption(_ error: KVError) -> Bool {
        if case .corruption = error { return true }
        return false
    }

    /// Opens `path` and reads everything; records an issue on wrong data or a non-corruption error.
    /// Returns true when every read succeeded.
    @discardableResult
    func checkReads(_ path: String, original: SSTableMetadata, strict: Bool = true) -> Bool {
        let reader: SSTableReader
        do {
            reader = try SSTableReader.open(path: path, cache: nil)
        } catch {
            #expect(isCorruption(error), "open: \(error)")
            return false
        }
        var clean = true
        if strict { #expect(reader.metadata == original) }
        do {
            var iterator = try reader.makeIterator()
            var index = 0
            while let entry = try iterator.next() {
                if strict { #expect(index < entries.count && entry == entries[index], "scan returned wrong data") }
                index += 1
            }
            if strict { #expect(index == entries.count, "scan ended early without an error") }
        } catch {
            #expect(isCorruption(error), "scan: \(error)")
            clean = false
        }
        for entry in entries {
            do {
                let got = try reader.get(key: entry.key, token: entry.token)
                if strict { #expect(got == entry.record, "get returned wrong data") }
            } catch {
                #expect(isCorruption(error), "get: \(error)")
                clean = false
            }
        }
        return clean
    }

    func makeTable(_ dir: TemporaryDirectory) throws -> ([UInt8], SSTableMetadata) {
        let path = dir.file("good.sst")
        let metadata = try writeTable(entries, to: path, settings: TableSettings(blockSizeBytes: 256))
        return (Array(try Data(contentsOf: URL(fileURLWithPath: path))), metadata)
    }

    @Test func bitFlipAtEveryOffsetIsDetected() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (good, metadata) = try makeTable(dir)
        #expect(checkReads(dir.file("good.sst"), original: metadata))
        let path = dir.file("bad.sst")
        var undetected = 0
        for offset in 0..<good.count {
            var bad = good
            bad[offset] ^= 1 << UInt8(offset % 8)
            try Data(bad).write(to: URL(fileURLWithPath: path))
            if checkReads(path, original: metadata) { undetected += 1 }
        }
        // CRC32C catches every single-bit error, so no damaged file reads cleanly.
        #expect(undetected == 0)
    }

    @Test func truncationAtEveryLengthIsDetected() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (good, metadata) = try makeTable(dir)
        let path = dir.file("short.sst")
        for length in 0..<good.count {
            try Data(good[0..<length]).write(to: URL(fileURLWithPath: path))
            #expect(!checkReads(path, original: metadata), "truncated to \(length) bytes read cleanly")
        }
    }

    /// Garbage inside a data block whose CRC was recomputed: decoding must bounds-check
    /// every length (the data may legitimately be wrong; it must not crash or throw
    /// anything but corruption).
    @Test func structurallyInvalidBlocksWithValidChecksumsNeverCrash() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (good, metadata) = try makeTable(dir)
        let reader = try SSTableReader.open(path: dir.file("good.sst"), cache: nil)
        let path = dir.file("forged.sst")
        var random = TestRandom(seed: 77)
        let footer = try SSTableFooter.decode(
            Array(good[(good.count - SSTableFormat.footerSize)...]), fileSize: UInt64(good.count), path: path)
        // Every data block, then the filter, index and metadata sections.
        for handle in reader.index.map(\.handle) + [footer.filter, footer.index, footer.metadata] {
            let start = Int(handle.offset)
            let bodyEnd = start + Int(handle.size) - 4
            guard bodyEnd > start else { continue }
            for _ in 0..<40 {
                var bad = good
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    let at = start + Int(random.next() % UInt64(bodyEnd - start))
                    bad[at] = UInt8(truncatingIfNeeded: random.next())
                }
                let crc = CRC32C.checksum(Array(bad[start..<bodyEnd]))
                withUnsafeBytes(of: crc.littleEndian) { for (i, b) in $0.enumerated() { bad[bodyEnd + i] = b } }
                try Data(bad).write(to: URL(fileURLWithPath: path))
                checkReads(path, original: metadata, strict: false)
            }
        }
    }
}
