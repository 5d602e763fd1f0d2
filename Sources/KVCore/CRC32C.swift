import CKVSystem

/// CRC32C (Castagnoli, polynomial 0x1EDC6F41), the checksum of every WAL record,
/// SSTable block and RPC frame. Uses the SSE4.2 `crc32` instruction when the CPU
/// has it (≈ 10+ GB/s), else a table (≈ 0.5 GB/s).
public enum CRC32C {
    @usableFromInline static let hardware: Bool = kv_crc32c_hardware_available() != 0

    @usableFromInline static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC32C of `bytes`, continuing from `crc` (the result of an earlier call, 0 to start).
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        if hardware { return ~kv_crc32c_hw(~crc, base, bytes.count) }
        return software(bytes, continuing: crc)
    }

    /// The CRC32C of a byte array.
    @inlinable public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The table-driven implementation, used where the instruction is missing (and by tests).
    public static func software(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }
}
