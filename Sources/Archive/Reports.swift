import Foundation

/// `archive report` (a per-file table as CSV, JSON or an HTML page) and `search`'s renderings.
public enum ArchiveReport {
    static let columns = ["path", "state", "size", "attempts", "crashes", "damaged", "events", "seconds", "exit_category", "error"]

    public struct Row: Codable, Equatable, Sendable {
        public var file: FileRecord
        public var events: Int
        public var outputs: [String]
    }

    public static func rows(_ store: any ArchiveStore) async throws -> [Row] {
        var out: [Row] = []
        for f in try await store.files() {
            out.append(Row(file: f, events: try await store.events(of: f.id).count, outputs: try await store.outputs(of: f.id)))
        }
        return out
    }

    private static func fields(_ r: Row) -> [String] {
        let f = r.file
        return [f.path, f.state.rawValue, String(f.size), String(f.attempts), String(f.crashes), String(f.damaged), String(r.events),
                f.seconds.map { String(format: "%.3f", $0) } ?? "", f.exitCategory ?? "", f.error ?? ""]
    }

    public static func csv(_ rows: [Row]) -> String {
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([columns.joined(separator: ",")] + rows.map { fields($0).map(quote).joined(separator: ",") }).joined(separator: "\n") + "\n"
    }

    public static func json(_ rows: [Row]) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(rows), as: UTF8.self) + "\n"
    }

    public static func html(_ rows: [Row], status: ArchiveStatus, title: String) -> String {
        var body = "<h1>\(escape(title))</h1>\n<p>"
        body += FileState.allCases.map { "\($0.rawValue): \(status.count($0))" }.joined(separator: " · ")
        if let t = status.throughput { body += String(format: " · %.2f files/s", t) }
        body += "</p>\n<table>\n<tr>" + columns.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        for r in rows {
            body += "<tr class=\"\(r.file.state.rawValue)\">" + fields(r).map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        return page(title, body + "</table>\n")
    }

    /// `file  start–end  score  snippet`, one hit a line, matches in [brackets].
    public static func text(_ hits: [SearchHit]) -> String {
        hits.map {
            "\($0.path)\t\(clock($0.start))–\(clock($0.end))\t\(String(format: "%.3f", $0.score))\t\($0.snippet(open: "[", close: "]"))"
        }.joined(separator: "\n") + (hits.isEmpty ? "" : "\n")
    }

    public static func json(_ hits: [SearchHit]) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let plain = hits.map { h -> SearchHit in
            var h = h
            h.snippet = h.snippet(open: "", close: "")
            return h
        }
        return String(decoding: try e.encode(plain), as: UTF8.self) + "\n"
    }

    /// The results page: each hit with its keyframe (when one was written) and the matches marked.
    public static func html(_ hits: [SearchHit], query: String) -> String {
        var body = "<h1>Search: \(escape(query))</h1>\n<p>\(hits.count) result\(hits.count == 1 ? "" : "s")</p>\n"
        for h in hits {
            body += "<div class=\"hit\">"
            if let k = h.keyframe { body += "<img src=\"\(escape(URL(fileURLWithPath: k).absoluteString))\" alt=\"keyframe\">" }
            body += "<div><b>\(escape(h.path))</b> \(clock(h.start))–\(clock(h.end)) · score \(String(format: "%.3f", h.score))<br>"
            body += escape(h.snippet).replacingOccurrences(of: SearchHit.markStart, with: "<mark>")
                .replacingOccurrences(of: SearchHit.markEnd, with: "</mark>")
            body += "</div></div>\n"
        }
        return page("densecap search: \(query)", body)
    }

    /// `H:MM:SS.mmm` (or `M:SS.mmm`) from seconds.
    public static func clock(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        let h = ms / 3_600_000, m = (ms / 60_000) % 60, s = (ms / 1000) % 60, r = ms % 1000
        return h > 0 ? String(format: "%d:%02d:%02d.%03d", h, m, s, r) : String(format: "%d:%02d.%03d", m, s, r)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func page(_ title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}
        tr.failed{background:#fdd}tr.running{background:#ffd}.hit{display:flex;gap:1em;margin:1em 0}.hit img{max-width:320px}mark{background:#ff0}</style>
        </head><body>
        \(body)</body></html>

        """
    }
}

/// A `--after`/`--before` value: an offset into the file (`90`, `1:30`, `1:02:03.5`) filters
/// events by where they start; a date (`2026-12-01`, `2026-12-01T08:30[:00][Z|±HH:MM]`, UTC unless
/// an offset is given) filters files by their modification (recording) time.
public enum SearchTime: Equatable, Sendable {
    case offset(Double)
    case date(Double)

    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if !text.contains("-"), (1...3).contains(parts.count), let seconds = Double(parts.last!),
            let whole = parts.dropLast().reduce(Optional(0.0), { acc, p in acc.flatMap { a in Double(p).map { a * 60 + $0 } } }) {
            self = .offset(whole * 60 + seconds)
            return
        }
        let iso = ISO8601DateFormatter()
        let attempts: [(String, ISO8601DateFormatter.Options)] = [
            (text, .withInternetDateTime),
            (text + "Z", .withInternetDateTime),
            (text + ":00Z", .withInternetDateTime),
            (text, [.withFullDate]),
        ]
        for (format, options) in attempts {
            iso.formatOptions = options
            if let d = iso.date(from: format) {
                self = .date(d.timeIntervalSince1970)
                return
            }
        }
        return nil
    }
}
