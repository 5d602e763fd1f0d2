/// Why a configuration could not be loaded. Every case names the setting.
public enum ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not valid TOML (line and reason inside).
    case syntax(TOMLError)
    /// The file could not be read.
    case unreadable(path: String, errno: Int32)
    /// A setting has the wrong type.
    case wrongType(key: String, expected: String, found: String)
    /// A setting kvd does not know (often a typo).
    case unknownKey(String)
    /// A setting's value is out of range or not one of the allowed words.
    case invalidValue(key: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let e): return "config syntax error at \(e)"
        case .unreadable(let path, let errno): return "cannot read config file \(path): errno \(errno)"
        case .wrongType(let key, let expected, let found): return "config setting '\(key)' must be \(expected), found \(found)"
        case .unknownKey(let key): return "unknown config setting '\(key)'"
        case .invalidValue(let key, let reason): return "config setting '\(key)': \(reason)"
        }
    }
}

/// A TOML table being read into settings: typed getters that remove what they
/// read, so `finish()` can reject keys nobody asked for (typos fail loudly).
struct ConfigTable {
    let path: String
    private var values: [String: TOMLValue]

    init(path: String, values: [String: TOMLValue]) {
        self.path = path
        self.values = values
    }

    func fullKey(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func int(_ key: String, min: Int = .min, max: Int = .max) throws(ConfigError) -> Int? {
        guard let v = values.removeValue(forKey: key) else { return nil }
        guard case .integer(let n) = v else { throw .wrongType(key: fullKey(key), expected: "an integer", found: v.typeName) }
        guard n >= Int64(min) && n <= Int64(max) else {
            throw .invalidValue(key: fullKey(key), reason: "must be between \(min) and \(max), found \(n)")
        }
        return Int(n)
    }

    mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = values.removeValue(forKey: key) else { return nil }
        guard case .boolean(let b) = v else { throw .wrongType(key: fullKey(key), expected: "a boolean", found: v.typeName) }
        return b
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = values.removeValue(forKey: key) else { return nil }
        guard case .string(let s) = v else { throw .wrongType(key: fullKey(key), expected: "a string", found: v.typeName) }
        return s
    }

    mutating func table(_ key: String) throws(ConfigError) -> ConfigTable {
        guard let v = values.removeValue(forKey: key) else { return ConfigTable(path: fullKey(key), values: [:]) }
        guard case .table(let t) = v else { throw .wrongType(key: fullKey(key), expected: "a table", found: v.typeName) }
        return ConfigTable(path: fullKey(key), values: t)
    }

    /// Throws for the first key that no getter read.
    func finish() throws(ConfigError) {
        if let key = values.keys.sorted().first { throw .unknownKey(fullKey(key)) }
    }
}
