/// An exact fraction `numerator / denominator`, always reduced, with a positive denominator.
///
/// Frame rates (`30000/1001`), time bases (`1/90000`) and sample aspect ratios (`16/11`) are
/// rationals in FFmpeg; keeping them exact is what lets timestamps stay exact.
public struct Rational: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let numerator: Int64
    public let denominator: Int64

    /// - Precondition: `denominator != 0` (a programmer error; parse user input with `init?(parsing:)`).
    public init(_ numerator: Int64, _ denominator: Int64 = 1) {
        precondition(denominator != 0, "rational with zero denominator: \(numerator)/0")
        let g = Rational.gcd(numerator, denominator)
        let sign: Int64 = denominator < 0 ? -1 : 1
        self.numerator = sign * numerator / g
        self.denominator = sign * denominator / g
    }

    /// Builds a reduced rational from 128-bit parts, or nil when it does not fit in 64 bits.
    init?(wide numerator: Int128, _ denominator: Int128) {
        guard denominator != 0 else { return nil }
        var g = numerator.magnitude
        var b = denominator.magnitude
        while b != 0 { (g, b) = (b, g % b) }
        let sign: Int128 = denominator < 0 ? -1 : 1
        let n = sign * numerator / Int128(g)
        let d = sign * denominator / Int128(g)
        guard let n64 = Int64(exactly: n), let d64 = Int64(exactly: d) else { return nil }
        self.numerator = n64
        self.denominator = d64
    }

    /// Parses `"30000/1001"`, `"29.97"`, `"-1.5"`, `"2"` exactly (decimal text becomes a power-of-ten
    /// denominator, never a binary float). Returns nil for anything else, a zero denominator or overflow.
    public init?(parsing text: String) {
        let s = text.trimmingCharactersInSet()
        if let slash = s.firstIndex(of: "/") {
            guard let n = Rational(parsing: String(s[..<slash])),
                let d = Rational(parsing: String(s[s.index(after: slash)...])), d.numerator != 0
            else { return nil }
            guard let q = n.dividedBy(d) else { return nil }
            self = q
            return
        }
        var digits = Substring(s)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count >= 1, parts.count <= 2, !(parts[0].isEmpty && (parts.count == 1 || parts[1].isEmpty))
        else { return nil }
        guard parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }) else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 18, let whole = Int64(parts[0].isEmpty ? "0" : String(parts[0])) else { return nil }
        var scale: Int64 = 1
        for _ in 0..<fraction.count { scale *= 10 }
        let frac = fraction.isEmpty ? 0 : Int64(String(fraction))!
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: scale)
        guard !overflow, scaled <= Int64.max - frac else { return nil }
        self.init(negative ? -(scaled + frac) : scaled + frac, scale)
    }

    public static let zero = Rational(0)
    public static let one = Rational(1)

    public var doubleValue: Double { Double(numerator) / Double(denominator) }
    public var isZero: Bool { numerator == 0 }
    public var description: String { denominator == 1 ? "\(numerator)" : "\(numerator)/\(denominator)" }

    public static func < (a: Rational, b: Rational) -> Bool {
        Int128(a.numerator) * Int128(b.denominator) < Int128(b.numerator) * Int128(a.denominator)
    }

    public func adding(_ o: Rational) -> Rational? {
        Rational(
            wide: Int128(numerator) * Int128(o.denominator) + Int128(o.numerator) * Int128(denominator),
            Int128(denominator) * Int128(o.denominator))
    }
    public func multiplied(by o: Rational) -> Rational? {
        Rational(wide: Int128(numerator) * Int128(o.numerator), Int128(denominator) * Int128(o.denominator))
    }
    public func dividedBy(_ o: Rational) -> Rational? {
        guard o.numerator != 0 else { return nil }
        return Rational(wide: Int128(numerator) * Int128(o.denominator), Int128(denominator) * Int128(o.numerator))
    }
    public var reciprocal: Rational? { Rational.one.dividedBy(self) }

    /// The largest integer ≤ self.
    public var floor: Int64 {
        let q = numerator / denominator
        return (numerator % denominator != 0 && numerator < 0) ? q - 1 : q
    }

    // Overflowing arithmetic traps: the operands are frame rates and times, far below 64-bit range;
    // use the `adding`/`multiplied` forms where the inputs come from the user.
    public static func + (a: Rational, b: Rational) -> Rational { a.adding(b)! }
    public static func - (a: Rational, b: Rational) -> Rational { a.adding(Rational(-b.numerator, b.denominator))! }
    public static func * (a: Rational, b: Rational) -> Rational { a.multiplied(by: b)! }
    public static func / (a: Rational, b: Rational) -> Rational { a.dividedBy(b)! }

    static func gcd(_ a: Int64, _ b: Int64) -> Int64 {
        var (x, y) = (a.magnitude, b.magnitude)
        while y != 0 { (x, y) = (y, x % y) }
        return x == 0 ? 1 : Int64(x)
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
    func trimmingCharactersInSet() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

extension Rational {
    private enum CodingKeys: String, CodingKey { case numerator, denominator }

    /// Decodes `{"numerator", "denominator"}`, rejecting a zero denominator (a damaged file must
    /// not become a division by zero later) and reducing the fraction.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let n = try c.decode(Int64.self, forKey: .numerator)
        let d = try c.decode(Int64.self, forKey: .denominator)
        guard d != 0, d != .min, n != .min else {
            throw DecodingError.dataCorruptedError(forKey: .denominator, in: c, debugDescription: "invalid rational \(n)/\(d)")
        }
        self.init(n, d)
    }
}
