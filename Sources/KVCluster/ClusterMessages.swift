import KVCore
import KVStorage

/// The operations nodes ask of each other, carried as the `method` of an RPC frame.
/// Payload layouts are in `FORMAT.md` beside this file.
public enum ClusterMethod: UInt16, Sendable, CaseIterable {
    /// Apply a batch of records as a replica (or keep it as a hint for `hintFor`). Reply: empty.
    case replicaWrite = 1
    /// Read one key's newest record from the replica's storage. Reply: a `ReplicaReadReply`.
    case replicaRead = 2
    /// One gossip message (`GossipCodec`), sent one-way.
    case gossip = 3
    /// A recovered replica receiving the hints held for it, oldest first. Reply: empty.
    case hintDelivery = 4
    /// Liveness and clock probe. Reply: a `PingReply`.
    case ping = 5
}

/// Why a cluster message could not be decoded.
public enum ClusterCodecError: Error, Sendable, Equatable {
    case unsupportedFormat(UInt8)
    case badFlag(UInt8)
    case countTooLarge(UInt64)
    case trailingBytes(Int)
    case invalidUTF8
    case malformedEntry(EntryCodecError)
    case malformed(ByteReader.Error)
}

/// A batch of records for one replica: a coordinator's write (every entry carries the
/// timestamp it assigned), a read repair, or hints being delivered.
public struct ReplicaWrite: Sendable, Equatable {
    /// The records, in the order they are to be applied.
    public var entries: [Entry]
    /// When set, the receiver is a stand-in: it keeps the batch as hints for this down
    /// replica instead of applying it to its own data.
    public var hintFor: NodeID?

    public init(entries: [Entry], hintFor: NodeID? = nil) {
        self.entries = entries
        self.hintFor = hintFor
    }
}

/// A replica's answer to a `replicaRead`: its newest record for the key, or nil.
public struct ReplicaReadReply: Sendable, Equatable {
    public var record: Record?

    public init(record: Record?) { self.record = record }
}

/// A node's answer to a ping: who it is and its wall clock.
public struct PingReply: Sendable, Equatable {
    public var node: NodeID
    public var wallMillis: UInt64

    public init(node: NodeID, wallMillis: UInt64) {
        self.node = node
        self.wallMillis = wallMillis
    }
}

/// The byte encodings of the cluster's RPC payloads (see `FORMAT.md`). Pure; decoding
/// never traps and rejects unknown formats, impossible counts and trailing bytes.
/// Cost: one pass, one allocation for the output.
public enum ClusterCodec {
    static let format: UInt8 = 1

    /// `replicaWrite` / `hintDelivery` payload.
    public static func encode(_ write: ReplicaWrite) -> [UInt8] {
        var w = ByteWriter(capacity: 32 + write.entries.count * 48)
        w.write(format)
        if let hint = write.hintFor {
            w.write(UInt8(1))
            w.write(lengthPrefixed: Array(hint.name.utf8))
        } else {
            w.write(UInt8(0))
        }
        w.write(varint: UInt64(write.entries.count))
        for e in write.entries { EntryCodec.encode(key: e.key, record: e.record, into: &w) }
        return w.bytes
    }

    public static func decodeWrite(_ bytes: [UInt8]) throws(ClusterCodecError) -> ReplicaWrite {
        try decoding(bytes) { (r: inout ByteReader) throws(ClusterCodecError) in
            try header(&r)
            let flag = try wrap { try r.readByte() }
            let hint: NodeID?
            switch flag {
            case 0: hint = nil
            case 1: hint = NodeID(try string(&r))
            default: throw .badFlag(flag)
            }
            let count = try wrap { try r.readVarint() }
            // Each entry takes at least 11 bytes (flags, key length, timestamp).
            guard count <= UInt64(r.remaining / 11) else { throw .countTooLarge(count) }
            var entries: [Entry] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                let (key, record): (Key, Record)
                do throws(EntryCodecError) { (key, record) = try EntryCodec.decode(from: &r) } catch { throw .malformedEntry(error) }
                entries.append(Entry(key: key, record: record))
            }
            return ReplicaWrite(entries: entries, hintFor: hint)
        }
    }

    /// `replicaRead` request payload: the key.
    public static func encodeRead(_ key: Key) -> [UInt8] {
        var w = ByteWriter(capacity: 8 + key.bytes.count)
        w.write(format)
        w.write(lengthPrefixed: key.bytes)
        return w.bytes
    }

    public static func decodeRead(_ bytes: [UInt8]) throws(ClusterCodecError) -> Key {
        try decoding(bytes) { (r: inout ByteReader) throws(ClusterCodecError) in
            try header(&r)
            return Key(try wrap { try r.readLengthPrefixed() })
        }
    }

    /// `replicaRead` reply payload.
    public static func encode(_ reply: ReplicaReadReply) -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        w.write(format)
        if let record = reply.record {
            w.write(UInt8(1))
            // The key is not needed in the reply; an empty key keeps the entry layout.
            EntryCodec.encode(key: Key([]), record: record, into: &w)
        } else {
            w.write(UInt8(0))
        }
        return w.bytes
    }

    public static func decodeReadReply(_ bytes: [UInt8]) throws(ClusterCodecError) -> ReplicaReadReply {
        try decoding(bytes) { (r: inout ByteReader) throws(ClusterCodecError) in
            try header(&r)
            let flag = try wrap { try r.readByte() }
            switch flag {
            case 0: return ReplicaReadReply(record: nil)
            case 1:
                do throws(EntryCodecError) { return ReplicaReadReply(record: try EntryCodec.decode(from: &r).1) } catch { throw .malformedEntry(error) }
            default: throw .badFlag(flag)
            }
        }
    }

    /// `ping` reply payload.
    public static func encode(_ reply: PingReply) -> [UInt8] {
        var w = ByteWriter(capacity: 24)
        w.write(format)
        w.write(lengthPrefixed: Array(reply.node.name.utf8))
        w.write(littleEndian: reply.wallMillis)
        return w.bytes
    }

    public static func decodePingReply(_ bytes: [UInt8]) throws(ClusterCodecError) -> PingReply {
        try decoding(bytes) { (r: inout ByteReader) throws(ClusterCodecError) in
            try header(&r)
            let node = NodeID(try string(&r))
            return PingReply(node: node, wallMillis: try wrap { try r.read(littleEndian: UInt64.self) })
        }
    }

    // MARK: Reading helpers

    private static func decoding<T>(
        _ bytes: [UInt8], _ body: (inout ByteReader) throws(ClusterCodecError) -> T
    ) throws(ClusterCodecError) -> T {
        let result = bytes.withUnsafeBytes { raw -> Result<T, ClusterCodecError> in
            var r = ByteReader(raw)
            do throws(ClusterCodecError) {
                let value = try body(&r)
                guard r.isAtEnd else { throw .trailingBytes(r.remaining) }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func header(_ r: inout ByteReader) throws(ClusterCodecError) {
        let f = try wrap { try r.readByte() }
        guard f == format else { throw .unsupportedFormat(f) }
    }

    private static func string(_ r: inout ByteReader) throws(ClusterCodecError) -> String {
        let bytes = try wrap { try r.readLengthPrefixed() }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return s
    }

    private static func wrap<T>(_ body: () throws -> T) throws(ClusterCodecError) -> T {
        do {
            return try body()
        } catch let error as ByteReader.Error {
            throw .malformed(error)
        } catch {
            throw .malformed(.malformedVarint)  // unreachable: ByteReader throws only its own errors
        }
    }
}
