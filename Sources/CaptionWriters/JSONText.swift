import DenseCore

/// A JSON value rendered with a fixed key order and numbers exactly as given, so outputs are
/// byte-stable (golden tests) and times print as their millisecond text ("6.706"), never as a
/// binary float's expansion.
public indirect enum JSONText: Equatable, Sendable {
    case string(String)
    /// A number's literal text.
    case number(String)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])

    public static func == (a: JSONText, b: JSONText) -> Bool { a.rendered() == b.rendered() }

    public static func int(_ v: Int) -> JSONText { .number(String(v)) }
    /// Seconds with millisecond precision, truncated like `MediaTime.milliseconds`.
    public static func seconds(_ t: MediaTime) -> JSONText { .number(t.secondsString) }
    /// A fraction in 0…1 with 4 decimals.
    public static func fraction(_ v: Double) -> JSONText {
        let scaled = Int((min(1, max(0, v)) * 10000).rounded())
        return .number(scaled == 10000 ? "1" : (scaled == 0 ? "0" : "0." + pad4(scaled)))
    }

    /// Pretty-printed with two-space indents; arrays of scalars stay on one line.
    public func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1), close = String(repeating: "  ", count: indent)
        switch self {
        case .string(let s): return JSONText.quote(s)
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy(\.isScalar) { return "[" + items.map { $0.rendered() }.joined(separator: ", ") + "]" }
            return "[\n" + items.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n" + close + "]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{\n" + fields.map { pad + JSONText.quote($0.0) + ": " + $0.1.rendered(indent: indent + 1) }
                .joined(separator: ",\n") + "\n" + close + "}"
        }
    }

    var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += "\\u" + pad4hex(Int(u.value))
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

private func pad4(_ v: Int) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}

private func pad4hex(_ v: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}
