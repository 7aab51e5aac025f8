/// An exact point on a media timeline, in seconds, as a rational.
///
/// Built from a stream's PTS × time base, never from a frame index ÷ frame rate: on a variable-rate
/// stream the two disagree. Convert to `Double` only at the edges (`seconds`), and format with
/// integer milliseconds (`milliseconds`, truncated toward −∞ so a frame is never reported late).
public struct MediaTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The exact time in seconds.
    public let rational: Rational

    public init(_ seconds: Rational) { self.rational = seconds }
    public init(seconds: Int64) { self.rational = Rational(seconds) }
    /// `value / timescale` seconds, e.g. `MediaTime(value: 1001, timescale: 30000)`.
    public init(value: Int64, timescale: Int64) { self.rational = Rational(value, timescale) }
    /// `pts × timeBase` seconds, exactly; nil only if the product overflows 64-bit parts.
    public init?(pts: Int64, timeBase: Rational) {
        guard let r = Rational(pts).multiplied(by: timeBase) else { return nil }
        self.rational = r
    }

    /// Parses `"12.5"`, `"30000/1001"`, `"1:02.5"` (M:SS) or `"1:02:03.25"` (H:MM:SS) exactly.
    public init?(parsing text: String) {
        let fields = text.trimmingCharactersInSet().split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(fields.count) else { return nil }
        if fields.count == 1 {
            guard let r = Rational(parsing: String(fields[0])) else { return nil }
            self.rational = r
            return
        }
        var total = Rational.zero
        for (i, field) in fields.enumerated() {
            let isLast = i == fields.count - 1
            guard !field.isEmpty, !field.hasPrefix("-"), !field.hasPrefix("+") else { return nil }
            if !isLast { guard field.allSatisfy(\.isASCIIDigit) else { return nil } }
            guard let v = Rational(parsing: String(field)), let scaled = total.multiplied(by: Rational(60)),
                let sum = scaled.adding(v)
            else { return nil }
            if i > 0, !(v < Rational(60)) { return nil }
            total = sum
        }
        self.rational = total
    }

    public static let zero = MediaTime(Rational.zero)

    /// Seconds as a Double, for display and for arithmetic that is allowed to be approximate.
    public var seconds: Double { rational.doubleValue }

    /// Whole milliseconds, truncated toward −∞ (12.3459 s → 12345).
    public var milliseconds: Int64 {
        let n = Int128(rational.numerator) * 1000
        let d = Int128(rational.denominator)
        var q = n / d
        if n % d != 0 && n < 0 { q -= 1 }
        return Int64(clamping: q)
    }

    /// This time as an integer number of `timeBase` ticks, rounded down; nil on overflow.
    public func ticks(in timeBase: Rational) -> Int64? {
        rational.dividedBy(timeBase)?.floor
    }

    /// `HH:MM:SS.mmm`, from integer milliseconds; negative times get a leading minus.
    public var timecode: String {
        let ms = milliseconds
        let a = ms.magnitude
        let h = a / 3_600_000, m = a / 60_000 % 60, s = a / 1000 % 60, f = a % 1000
        return (ms < 0 ? "-" : "") + pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + "." + pad(f, 3)
    }

    /// Seconds with exactly three decimals, truncated like `milliseconds` ("12.345").
    public var secondsString: String {
        let ms = milliseconds
        let a = ms.magnitude
        return (ms < 0 ? "-" : "") + "\(a / 1000)." + pad(a % 1000, 3)
    }

    public var description: String { secondsString }

    public static func < (a: MediaTime, b: MediaTime) -> Bool { a.rational < b.rational }
    public static func + (a: MediaTime, b: MediaTime) -> MediaTime { MediaTime(a.rational + b.rational) }
    public static func - (a: MediaTime, b: MediaTime) -> MediaTime { MediaTime(a.rational - b.rational) }
}

func pad(_ v: UInt64, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// Encoded as its exact `Rational` (`{"numerator": 1001, "denominator": 30000}`), never as a float.
extension MediaTime: Codable {
    public init(from decoder: Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(Rational.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rational)
    }
}
