/// Writes compact JSON into bytes: the few shapes the item API returns
/// (objects of strings, integers and booleans). Strings are escaped per RFC 8259.
///
/// Cost: appends to one growing byte array; no Foundation, no intermediate values.
public struct JSONWriter: Sendable {
    /// The JSON text written so far (UTF-8).
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 128) {
        bytes.reserveCapacity(capacity)
    }

    /// Opens an object (`{`).
    public mutating func beginObject() {
        separator()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    /// Closes the innermost object (`}`).
    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    /// An object member name; the value call that follows writes its value.
    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// A string value, escaped.
    public mutating func string(_ s: String) {
        separator()
        var s = s
        s.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0)) }
        needsComma = true
    }

    /// A string from raw bytes that are known to be UTF-8 (for example base64 text).
    public mutating func string(utf8 raw: [UInt8]) {
        separator()
        raw.withUnsafeBytes { appendEscaped($0) }
        needsComma = true
    }

    /// A signed integer value.
    public mutating func integer(_ n: Int64) {
        separator()
        appendDecimal(Int(n), to: &bytes)
        needsComma = true
    }

    /// An unsigned integer value.
    public mutating func integer(_ n: UInt64) {
        separator()
        appendDecimal(n, to: &bytes)
        needsComma = true
    }

    /// `true` or `false`.
    public mutating func bool(_ b: Bool) {
        separator()
        bytes.append(contentsOf: (b ? "true" : "false").utf8)
        needsComma = true
    }

    private mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func appendEscaped(_ raw: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        for b in raw {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
            case 10: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<32:
                bytes.append(contentsOf: "\\u00".utf8)
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
