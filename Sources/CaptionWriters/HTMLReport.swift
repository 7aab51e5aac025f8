import DenseCore
import EventSegmenter
import Foundation

/// A self-contained HTML report: the video's metadata and settings, a timeline with one block per
/// event (width ∝ duration, colour by kind), and per event its keyframe thumbnail (inline
/// base64 PNG), times, kind, confidence and caption. No scripts, fonts or files outside it.
public enum HTMLReport {
    public static func render(_ d: CaptionDocument) -> String {
        let total = max(0.001, (d.video.duration ?? d.events.last?.end ?? .zero).seconds)
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(escape(d.video.id)) — densecap</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
            h1 { font-size: 20px; margin: 0 0 8px; }
            table.meta { border-collapse: collapse; margin: 8px 0 16px; }
            table.meta td { padding: 2px 12px 2px 0; vertical-align: top; }
            table.meta td:first-child { color: #666; }
            .timeline { position: relative; height: 28px; background: #ddd; border-radius: 4px; overflow: hidden; margin: 8px 0 4px; }
            .timeline a { position: absolute; top: 0; bottom: 0; border-right: 1px solid #fff; box-sizing: border-box; }
            .scale { display: flex; justify-content: space-between; color: #666; font-size: 12px; margin-bottom: 16px; }
            .k-start, .k-cut { background: #4a7bd0; } .k-fade { background: #7a52b3; } .k-dissolve { background: #3a9d8f; }
            .k-motion { background: #d07a2a; } .k-semantic { background: #c04a6a; } .k-split { background: #8a8a8a; }
            .skip { opacity: 0.45; }
            .event { display: flex; gap: 16px; padding: 10px; margin: 8px 0; background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; }
            .event img { width: 240px; height: auto; border-radius: 4px; flex: none; }
            .event .nothumb { width: 240px; height: 135px; background: #eee; flex: none; border-radius: 4px; }
            .when { font-weight: 600; } .tag { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; margin-left: 6px; }
            .caption { margin-top: 6px; overflow-wrap: anywhere; } .nocaption { margin-top: 6px; color: #888; font-style: italic; }
            </style>
            </head>
            <body>
            <h1>\(escape(d.video.id))</h1>

            """
        var meta: [(String, String)] = [("file", d.video.path)]
        if let t = d.video.duration { meta.append(("duration", "\(t.timecode) (\(t.secondsString) s)")) }
        if let w = d.video.width, let h = d.video.height { meta.append(("size", "\(w)×\(h)")) }
        if let r = d.video.frameRate { meta.append(("frame rate", String(format: "%.3f fps (%@)", r.doubleValue, r.description))) }
        if let c = d.video.codec { meta.append(("codec", c)) }
        meta.append(("model", d.model ?? "none (event boundaries only)"))
        meta.append(("generator", d.generator))
        meta.append(("events", String(d.events.count)))
        for (k, v) in d.settings + d.analysis { meta.append((k, v)) }
        html += "<table class=\"meta\">\n"
        for (k, v) in meta { html += "<tr><td>\(escape(k))</td><td>\(escape(v))</td></tr>\n" }
        html += "</table>\n<div class=\"timeline\">\n"
        for (i, e) in d.events.enumerated() {
            let left = percent(e.start.seconds / total), width = percent(e.duration.seconds / total)
            let cls = "k-\(e.kind.rawValue)" + (e.skippable ? " skip" : "")
            html += "<a href=\"#e\(i + 1)\" class=\"\(cls)\" style=\"left:\(left)%;width:\(width)%\" title=\"\(i + 1): \(e.start.timecode)–\(e.end.timecode)\"></a>\n"
        }
        html += "</div>\n<div class=\"scale\"><span>00:00:00.000</span><span>\(MediaTime(Rational(Int64((total * 1000).rounded()), 1000)).timecode)</span></div>\n"
        for (i, e) in d.events.enumerated() {
            html += "<div class=\"event\(e.skippable ? " skip" : "")\" id=\"e\(i + 1)\">\n"
            if let png = d.thumbnails[i] {
                html += "<img alt=\"keyframe at \(e.keyframe.timecode)\" src=\"data:image/png;base64,\(Data(png).base64EncodedString())\">\n"
            } else {
                html += "<div class=\"nothumb\"></div>\n"
            }
            html += "<div>\n<div><span class=\"when\">\(i + 1). \(e.start.timecode) – \(e.end.timecode)</span>"
            html += "<span class=\"tag k-\(e.kind.rawValue)\">\(e.kind.rawValue)</span>"
            html += " <span title=\"confidence of the boundary\">\(JSONText.fraction(e.confidence).rendered())</span>"
            if e.isStatic { html += " · static" }
            if e.skippable { html += " · skippable" }
            html += "</div>\n<div>keyframe \(e.keyframe.timecode) · \(e.duration.secondsString) s</div>\n"
            if let c = e.caption {
                html += "<div class=\"caption\">\(escape(c))</div>\n"
            } else {
                html += "<div class=\"nocaption\">no caption</div>\n"
            }
            html += "</div>\n</div>\n"
        }
        html += "</body>\n</html>\n"
        return html
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    private static func percent(_ f: Double) -> String { String(format: "%.3f", min(100, max(0, f * 100))) }
}
