/// Decimal integers written straight into output bytes, for HTTP and RESP
/// framing on the hot path (no `String` is built).

/// Appends the decimal digits of `n` (with a leading `-` when negative) to `out`.
@inlinable func appendDecimal(_ n: Int, to out: inout [UInt8]) {
    if n < 0 { out.append(UInt8(ascii: "-")) }
    appendDecimal(UInt64(n.magnitude), to: &out)
}

/// Appends the decimal digits of `n` to `out`.
@inlinable func appendDecimal(_ n: UInt64, to out: inout [UInt8]) {
    var digits = 1
    var m = n
    while m >= 10 {
        m /= 10
        digits += 1
    }
    let base = out.count
    out.append(contentsOf: repeatElement(0, count: digits))
    var v = n
    var i = base + digits - 1
    repeat {
        out[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
        v /= 10
        i -= 1
    } while v > 0
}

/// Parses an optionally signed decimal integer from ASCII bytes; nil on any other
/// byte, on an empty input, or on overflow.
@inlinable func parseDecimal<C: Collection>(_ bytes: C) -> Int64? where C.Element == UInt8 {
    var it = bytes.makeIterator()
    guard var b = it.next() else { return nil }
    var negative = false
    if b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
        negative = b == UInt8(ascii: "-")
        guard let n = it.next() else { return nil }
        b = n
    }
    var result: Int64 = 0
    while true {
        guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
        let d = Int64(b &- UInt8(ascii: "0"))
        let (m, o1) = result.multipliedReportingOverflow(by: 10)
        let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
        if o1 || o2 { return nil }
        result = s
        guard let n = it.next() else { return result }
        b = n
    }
}
