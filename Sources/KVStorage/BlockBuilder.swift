import KVCore

/// Accumulates sorted entries into one SSTable data block (layout in FORMAT.md):
/// entries (`token u64` + `EntryCodec` bytes), an offset per entry, the entry
/// count, and a CRC32C trailer. No prefix compression: neighbouring keys are
/// ordered by hash, so they rarely share a prefix; the per-entry offsets give
/// binary search inside the block instead.
struct BlockBuilder {
    private var writer: ByteWriter
    private var offsets: [UInt32] = []

    init(capacity: Int) { writer = ByteWriter(capacity: capacity + 256) }

    var isEmpty: Bool { offsets.isEmpty }
    var entryCount: Int { offsets.count }

    /// Size of the block if finished now, trailer included.
    var estimatedSize: Int { writer.count + 4 * offsets.count + 8 }

    mutating func add(_ entry: Entry) {
        offsets.append(UInt32(writer.count))
        writer.write(littleEndian: entry.token.rawValue)
        EntryCodec.encode(key: entry.key, record: entry.record, into: &writer)
    }

    /// The finished block's bytes; the builder is reset for the next block.
    mutating func finish() -> [UInt8] {
        for offset in offsets { writer.write(littleEndian: offset) }
        writer.write(littleEndian: UInt32(offsets.count))
        appendTrailer(to: &writer, from: 0)
        let bytes = writer.bytes
        writer.removeAll()
        offsets.removeAll(keepingCapacity: true)
        return bytes
    }
}
