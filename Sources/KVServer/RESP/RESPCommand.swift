/// The Redis commands kvd answers, recognised from the first argument's bytes
/// without building a `String` (the GET/SET fast path is a few byte compares).
public enum RESPCommand: String, Sendable, CaseIterable {
    case ping, echo, get, set, del, exists, mget, mset, ttl, pttl, info, command, quit, select, config

    /// Arity as Redis reports it in `COMMAND`: positive = exact argument count
    /// (name included), negative = at least that many.
    public var arity: Int {
        switch self {
        case .ping: return -1
        case .echo: return 2
        case .get: return 2
        case .set: return -3
        case .del: return -2
        case .exists: return -2
        case .mget: return -2
        case .mset: return -3
        case .ttl, .pttl: return 2
        case .info: return -1
        case .command: return -1
        case .quit: return -1
        case .select: return 2
        case .config: return -2
        }
    }

    /// Flags as Redis reports them in `COMMAND`.
    public var flags: [String] {
        switch self {
        case .get, .mget, .exists, .ttl, .pttl: return ["readonly", "fast"]
        case .set, .mset: return ["write", "denyoom"]
        case .del: return ["write"]
        default: return ["fast", "stale", "loading"]
        }
    }

    /// Positions of the first and last key argument and the step between keys (0s: no keys).
    public var keySpec: (first: Int, last: Int, step: Int) {
        switch self {
        case .get, .set, .ttl, .pttl: return (1, 1, 1)
        case .del, .exists, .mget: return (1, -1, 1)
        case .mset: return (1, -1, 2)
        default: return (0, 0, 0)
        }
    }

    private static let byName: [[UInt8]: RESPCommand] = {
        var table: [[UInt8]: RESPCommand] = [:]
        for c in allCases { table[Array(c.rawValue.utf8)] = c }
        return table
    }()

    /// The command named by `name` (ASCII case-insensitive), or nil.
    @inlinable public init?<Name: RandomAccessCollection>(name: Name) where Name.Element == UInt8 {
        if name.count == 3 {
            let i = name.startIndex
            let a = name[i] | 0x20
            let b = name[name.index(after: i)] | 0x20
            let c = name[name.index(i, offsetBy: 2)] | 0x20
            if b == UInt8(ascii: "e") && c == UInt8(ascii: "t") {
                if a == UInt8(ascii: "g") { self = .get; return }
                if a == UInt8(ascii: "s") { self = .set; return }
            }
        }
        guard name.count <= 16, let found = Self.lookup(name.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }) else {
            return nil
        }
        self = found
    }

    /// The command whose lowercased name is `lowercased`.
    @usableFromInline static func lookup(_ lowercased: [UInt8]) -> RESPCommand? { byName[lowercased] }
}
