/// A value in a TOML document.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])
    case table([String: TOMLValue])

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .boolean: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }
}

/// Why a TOML document did not parse: the 1-based line and what was wrong.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line of the problem.
    public var line: Int
    /// What is wrong.
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// A parser for the subset of TOML 1.0 that kvd's config files use.
///
/// Supported: `[table]` and `[dotted.table]` headers, bare, quoted and dotted
/// keys, basic (`"…"`, with escapes) and literal (`'…'`) strings, integers
/// (decimal with `_`, `0x`, `0o`, `0b`), floats (with fraction/exponent, `inf`,
/// `nan`), booleans, arrays (across lines, trailing comma, comments inside) and
/// inline tables, and `#` comments. Not supported (a clear error, never a silent
/// misread): multi-line strings, dates and times, arrays of tables (`[[x]]`).
/// Redefining a key or a table is an error, as in TOML.
public enum TOML {
    /// Parses `text` into its root table.
    public static func parse(_ text: String) throws(TOMLError) -> [String: TOMLValue] {
        var p = TOMLReader(bytes: Array(text.utf8))
        return try p.document()
    }
}

private struct TOMLReader {
    let bytes: [UInt8]
    var pos = 0
    var line = 1
    var root: [String: TOMLValue] = [:]
    /// Tables created by a `[header]`, which may not be declared twice.
    var declaredTables: Set<[String]> = []

    func fail(_ message: String) -> TOMLError { TOMLError(line: line, message: message) }

    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipSpaces() {
        while let b = peek, b == 32 || b == 9 { pos += 1 }
    }

    mutating func skipComment() {
        if peek == UInt8(ascii: "#") {
            while let b = peek, b != 10 { pos += 1 }
        }
    }

    /// Whitespace, comments and newlines (inside arrays).
    mutating func skipBlank() {
        while let b = peek {
            if b == 32 || b == 9 || b == 13 { pos += 1 } else if b == 10 { pos += 1; line += 1 } else if b == UInt8(ascii: "#") { skipComment() } else { return }
        }
    }

    /// After a value or header: spaces, an optional comment, then a newline or the end.
    mutating func endOfLine() throws(TOMLError) {
        skipSpaces()
        skipComment()
        if peek == 13 { pos += 1 }
        guard let b = peek else { return }
        guard b == 10 else { throw fail("expected the end of the line, found '\(Character(Unicode.Scalar(b)))'") }
        pos += 1
        line += 1
    }

    mutating func document() throws(TOMLError) -> [String: TOMLValue] {
        var current: [String] = []
        while true {
            skipBlank()
            guard let b = peek else { return root }
            if b == UInt8(ascii: "[") {
                pos += 1
                if peek == UInt8(ascii: "[") { throw fail("arrays of tables ([[...]]) are not supported") }
                skipSpaces()
                let path = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "]") else { throw fail("expected ']' after the table name") }
                pos += 1
                guard !declaredTables.contains(path) else { throw fail("table [\(path.joined(separator: "."))] is defined twice") }
                declaredTables.insert(path)
                try ensureTable(path)
                current = path
                try endOfLine()
            } else {
                let k = try key()
                skipSpaces()
                guard peek == UInt8(ascii: "=") else { throw fail("expected '=' after the key '\(k.joined(separator: "."))'") }
                pos += 1
                skipSpaces()
                let v = try value()
                try insert(current + k, v)
                try endOfLine()
            }
        }
    }

    /// A dotted key: parts separated by '.', each bare or quoted.
    mutating func key() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            guard let b = peek else { throw fail("expected a key") }
            if b == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if b == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else {
                let begin = pos
                while let c = peek, Self.isBareKeyByte(c) { pos += 1 }
                guard pos > begin else { throw fail("expected a key, found '\(Character(Unicode.Scalar(b)))'") }
                parts.append(String(decoding: bytes[begin..<pos], as: UTF8.self))
            }
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { return parts }
            pos += 1
        }
    }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 95 || c == 45
    }

    mutating func ensureTable(_ path: [String]) throws(TOMLError) {
        try Self.modify(&root, path[...], createOnly: true, value: nil, line: line)
    }

    mutating func insert(_ path: [String], _ value: TOMLValue) throws(TOMLError) {
        try Self.modify(&root, path[...], createOnly: false, value: value, line: line)
    }

    /// Walks `path` from `table`, creating intermediate tables; stores `value` at the end
    /// (or only creates the table when `createOnly`).
    static func modify(
        _ table: inout [String: TOMLValue], _ path: ArraySlice<String>, createOnly: Bool, value: TOMLValue?, line: Int
    ) throws(TOMLError) {
        let name = path.first!
        let rest = path.dropFirst()
        if rest.isEmpty && !createOnly {
            guard table[name] == nil else { throw TOMLError(line: line, message: "key '\(name)' is defined twice") }
            table[name] = value
            return
        }
        var child: [String: TOMLValue]
        switch table[name] {
        case nil: child = [:]
        case .table(let t): child = t
        case .some(let other): throw TOMLError(line: line, message: "'\(name)' is a \(other.typeName), not a table")
        }
        if !rest.isEmpty {
            try modify(&child, rest, createOnly: createOnly, value: value, line: line)
        }
        table[name] = .table(child)
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        guard let b = peek else { throw fail("expected a value") }
        switch b {
        case UInt8(ascii: "\""):
            if pos + 2 < bytes.count && bytes[pos + 1] == 34 && bytes[pos + 2] == 34 { throw fail("multi-line strings are not supported") }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if pos + 2 < bytes.count && bytes[pos + 1] == 39 && bytes[pos + 2] == 39 { throw fail("multi-line strings are not supported") }
            return .string(try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        default:
            let begin = pos
            while let c = peek, c != 32, c != 9, c != 10, c != 13, c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "}"), c != UInt8(ascii: "#") {
                pos += 1
            }
            let word = String(decoding: bytes[begin..<pos], as: UTF8.self)
            guard !word.isEmpty else { throw fail("expected a value") }
            if let v = Self.scalar(word) { return v }
            if word.contains(":") || (word.count >= 10 && word.dropFirst(4).first == "-") {
                throw fail("dates and times are not supported ('\(word)')")
            }
            throw fail("invalid value '\(word)'")
        }
    }

    /// A boolean, integer or float from its text.
    static func scalar(_ word: String) -> TOMLValue? {
        switch word {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        let chars = Array(word.utf8)
        // Underscores only between digits.
        for (i, c) in chars.enumerated() where c == 95 {
            guard i > 0, i + 1 < chars.count, isAlnum(chars[i - 1]), isAlnum(chars[i + 1]) else { return nil }
        }
        let clean = word.replacingUnderscores()
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where clean.hasPrefix(prefix) {
            return Int64(clean.dropFirst(2), radix: radix).map { .integer($0) }
        }
        let digits = clean.first == "+" || clean.first == "-" ? clean.dropFirst() : clean[...]
        if digits.count > 1 && digits.first == "0" && digits.dropFirst().first?.isNumber == true { return nil }
        if let i = Int64(clean) { return .integer(i) }
        guard digits.first?.isNumber == true, digits.last?.isNumber == true, !digits.contains(".e"), !digits.contains(".E") else { return nil }
        if digits.contains(".") {
            // A '.' must have digits on both sides.
            guard let dot = digits.firstIndex(of: "."), digits[digits.index(after: dot)].isNumber else { return nil }
        }
        return Double(clean).map { .float($0) }
    }

    static func isAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) }

    mutating func array() throws(TOMLError) -> TOMLValue {
        pos += 1
        var elements: [TOMLValue] = []
        while true {
            skipBlank()
            guard let b = peek else { throw fail("unterminated array") }
            if b == UInt8(ascii: "]") {
                pos += 1
                return .array(elements)
            }
            elements.append(try value())
            skipBlank()
            guard let c = peek else { throw fail("unterminated array") }
            if c == UInt8(ascii: ",") {
                pos += 1
            } else if c != UInt8(ascii: "]") {
                throw fail("expected ',' or ']' in an array")
            }
        }
    }

    mutating func inlineTable() throws(TOMLError) -> TOMLValue {
        pos += 1
        var table: [String: TOMLValue] = [:]
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            pos += 1
            return .table(table)
        }
        while true {
            let k = try key()
            skipSpaces()
            guard peek == UInt8(ascii: "=") else { throw fail("expected '=' in an inline table") }
            pos += 1
            skipSpaces()
            let v = try value()
            try Self.modify(&table, k[...], createOnly: false, value: v, line: line)
            skipSpaces()
            guard let c = peek else { throw fail("unterminated inline table") }
            pos += 1
            if c == UInt8(ascii: "}") { return .table(table) }
            guard c == UInt8(ascii: ",") else { throw fail("expected ',' or '}' in an inline table") }
            skipSpaces()
        }
    }

    mutating func literalString() throws(TOMLError) -> String {
        pos += 1
        let begin = pos
        while let b = peek, b != 39 {
            if b == 10 { throw fail("unterminated string") }
            pos += 1
        }
        guard peek == 39 else { throw fail("unterminated string") }
        let s = String(decoding: bytes[begin..<pos], as: UTF8.self)
        pos += 1
        return s
    }

    mutating func basicString() throws(TOMLError) -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let b = peek, b != 10 else { throw fail("unterminated string") }
            pos += 1
            if b == 34 { return String(decoding: out, as: UTF8.self) }
            guard b == 92 else {
                out.append(b)
                continue
            }
            guard let e = peek else { throw fail("unterminated string") }
            pos += 1
            switch e {
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "r"): out.append(13)
            case 34: out.append(34)
            case 92: out.append(92)
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let n = e == UInt8(ascii: "u") ? 4 : 8
                guard pos + n <= bytes.count, let code = UInt32(String(decoding: bytes[pos..<(pos + n)], as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(code)
                else { throw fail("invalid unicode escape") }
                pos += n
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(String.UnicodeScalarView(unicodeScalars.filter { $0 != "_" }))
    }
}
