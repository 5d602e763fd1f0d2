import KVCore

/// One version of one key as the engine stores it: the unit of the memtable,
/// SSTables, WAL batches and scans. Sorted structures order entries by
/// `(token, key)` (see `Entry.precedes`), so a token range is one contiguous slice.
public struct Entry: Sendable, Hashable {
    public var token: Token
    public var key: Key
    public var record: Record

    @inlinable public init(key: Key, record: Record) {
        self.token = key.token
        self.key = key
        self.record = record
    }

    @inlinable public init(token: Token, key: Key, record: Record) {
        self.token = token
        self.key = key
        self.record = record
    }

    /// The engine's sort order: by token, then by key bytes.
    @inlinable public static func precedes(_ a: (Token, Key), _ b: (Token, Key)) -> Bool {
        a.0 != b.0 ? a.0 < b.0 : a.1 < b.1
    }
}

/// The byte encoding of an `Entry`, shared by the WAL and SSTable data blocks.
///
/// ```
/// flags      u8       bit 0: tombstone, bit 1: has expiry (other bits 0)
/// key        varint length + bytes
/// timestamp  u64 LE   (HLC raw value)
/// expiry     u64 LE   only when flags bit 1 (ms since epoch)
/// value      varint length + bytes, only when not a tombstone
/// ```
/// The token is not stored: it is recomputed from the key (XXH64) where needed.
public enum EntryCodec {
    static let tombstoneFlag: UInt8 = 1
    static let expiryFlag: UInt8 = 2

    /// Appends the encoding of `key` + `record` to `writer`.
    public static func encode(key: Key, record: Record, into writer: inout ByteWriter) {
        var flags: UInt8 = 0
        if record.isTombstone { flags |= tombstoneFlag }
        if record.expiresAtMillis != nil { flags |= expiryFlag }
        writer.write(flags)
        writer.write(lengthPrefixed: key.bytes)
        writer.write(littleEndian: record.timestamp.rawValue)
        if let expiry = record.expiresAtMillis { writer.write(littleEndian: expiry) }
        if case let .value(value) = record.payload { writer.write(lengthPrefixed: value.bytes) }
    }

    /// Decodes one entry at the reader's position. Throws on truncation or unknown flags.
    public static func decode(from reader: inout ByteReader) throws(EntryCodecError) -> (Key, Record) {
        let (key, record) = try decode(from: &reader, keepingKey: true)
        return (key!, record)
    }

    /// Decodes one entry's record, stepping over its key without copying it: for a
    /// point lookup that has already compared the key. Same checks as `decode`.
    public static func decodeRecord(from reader: inout ByteReader) throws(EntryCodecError) -> Record {
        try decode(from: &reader, keepingKey: false).1
    }

    private static func decode(from reader: inout ByteReader, keepingKey: Bool) throws(EntryCodecError) -> (Key?, Record) {
        do {
            let flags = try reader.readByte()
            guard flags & ~(tombstoneFlag | expiryFlag) == 0 else { throw EntryCodecError.badFlags(flags) }
            let key: Key?
            if keepingKey {
                key = Key(try reader.readLengthPrefixed())
            } else {
                let length = try reader.readVarint()
                guard length <= UInt64(reader.remaining) else {
                    throw ByteReader.Error.truncated(needed: Int(clamping: length), available: reader.remaining)
                }
                try reader.skip(Int(length))
                key = nil
            }
            let timestamp = Timestamp(rawValue: try reader.read(littleEndian: UInt64.self))
            let expiry: UInt64? = flags & expiryFlag != 0 ? try reader.read(littleEndian: UInt64.self) : nil
            let payload: Record.Payload =
                flags & tombstoneFlag != 0 ? .tombstone : .value(Value(try reader.readLengthPrefixed()))
            return (key, Record(payload: payload, timestamp: timestamp, expiresAtMillis: expiry))
        } catch let error as ByteReader.Error {
            throw .malformed(error)
        } catch let error as EntryCodecError {
            throw error
        } catch {
            throw .malformed(.malformedVarint)
        }
    }
}

/// Why bytes could not be decoded as an entry.
public enum EntryCodecError: Error, Sendable, Equatable {
    case badFlags(UInt8)
    case malformed(ByteReader.Error)
}
