/// Writes RESP2 replies straight into a connection's output bytes.
///
/// Each function appends one reply (or an array header whose elements follow).
/// No intermediate values and no `String` formatting on the hot path.
public enum RESPReply {
    /// `+OK\r\n`
    public static let ok: [UInt8] = Array("+OK\r\n".utf8)
    /// `$-1\r\n`, the null bulk string (a missing key).
    public static let nullBulk: [UInt8] = Array("$-1\r\n".utf8)

    /// A simple string: `+text\r\n` (text must not contain CR or LF).
    @inlinable public static func simple(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "+"))
        out.append(contentsOf: text.utf8)
        out.append(13); out.append(10)
    }

    /// An error: `-ERR message\r\n` (or another prefix if `message` starts with one, e.g. `WRONGTYPE`).
    /// CR and LF in the message are replaced by spaces so the reply stays one line.
    @inlinable public static func error(_ message: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "-"))
        for b in message.utf8 { out.append(b == 13 || b == 10 ? 32 : b) }
        out.append(13); out.append(10)
    }

    /// An integer: `:n\r\n`.
    @inlinable public static func integer(_ n: Int, into out: inout [UInt8]) {
        out.append(UInt8(ascii: ":"))
        appendDecimal(n, to: &out)
        out.append(13); out.append(10)
    }

    /// A bulk string: `$len\r\nbytes\r\n`.
    @inlinable public static func bulk(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "$"))
        appendDecimal(bytes.count, to: &out)
        out.append(13); out.append(10)
        out.append(contentsOf: bytes)
        out.append(13); out.append(10)
    }

    /// A bulk string of UTF-8 text.
    @inlinable public static func bulk(_ text: String, into out: inout [UInt8]) {
        bulk(Array(text.utf8), into: &out)
    }

    /// `$-1\r\n`.
    @inlinable public static func null(into out: inout [UInt8]) {
        out.append(contentsOf: nullBulk)
    }

    /// An array header `*count\r\n`; the caller appends `count` replies after it.
    @inlinable public static func arrayHeader(_ count: Int, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        appendDecimal(count, to: &out)
        out.append(13); out.append(10)
    }
}
