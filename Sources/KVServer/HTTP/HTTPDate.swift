/// The `Date` header value (RFC 9110 §5.6.7 IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`), computed from Unix seconds without
/// Foundation. Connection handlers cache it per second.
public enum HTTPDate {
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The IMF-fixdate for `seconds` since the Unix epoch (UTC).
    public static func format(epochSeconds seconds: UInt64) -> String {
        let dayNumber = Int64(seconds / 86_400)
        let secondOfDay = Int(seconds % 86_400)
        let (year, month, day) = civil(fromDays: dayNumber)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(dayNumber % 7)]), \(two(day)) \(months[month - 1]) \(year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Year, month (1–12) and day (1–31) of a day count since 1970-01-01
    /// (Howard Hinnant's days-to-civil algorithm).
    static func civil(fromDays z0: Int64) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }
}

/// The `Date: …\r\n` header line for the current second, rebuilt only when the
/// second changes (one per connection; no shared state).
struct HTTPDateLine {
    private var second: UInt64 = .max
    private(set) var bytes: [UInt8] = []

    /// The header line for `millis` since the epoch.
    mutating func line(nowMillis millis: UInt64) -> [UInt8] {
        let s = millis / 1000
        if s != second {
            second = s
            bytes = Array("Date: \(HTTPDate.format(epochSeconds: s))\r\n".utf8)
        }
        return bytes
    }
}
