/// Decoding of `application/x-www-form-urlencoded` query strings
/// (`key=user%3A1&consistency=strong`): `%XX` escapes and `+` for space.
public enum QueryString {
    /// The decoded bytes of one component, or nil when a `%` escape is malformed.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var it = text.utf8.makeIterator()
        while let b = it.next() {
            switch b {
            case UInt8(ascii: "+"): out.append(32)
            case UInt8(ascii: "%"):
                guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
                out.append(h << 4 | l)
            default: out.append(b)
            }
        }
        return out
    }

    /// The parameters of a query string, decoded; the first occurrence of a name
    /// wins. Nil when any component has a malformed escape.
    public static func parse<S: StringProtocol>(_ query: S) -> [String: [UInt8]]? {
        var result: [String: [UInt8]] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring.SubSequence, value: Substring.SubSequence
            if let eq = pair.firstIndex(of: "=") {
                name = Substring(pair[..<eq])
                value = Substring(pair[pair.index(after: eq)...])
            } else {
                name = Substring(pair)
                value = ""
            }
            guard let n = decode(name), let v = decode(value) else { return nil }
            let key = String(decoding: n, as: UTF8.self)
            if result[key] == nil { result[key] = v }
        }
        return result
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 97...102: return b - 87
        case 65...70: return b - 55
        default: return nil
        }
    }
}
