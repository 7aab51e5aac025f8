import DenseCore
import EventSegmenter
import Foundation

/// densecap's own JSON (`schema: "densecap.events/1"`, documented in README):
/// video metadata, generator, model, settings, and per event index, start, end, keyframe (seconds
/// with millisecond precision, plus the exact rationals), kind, confidence, static, skippable,
/// caption (null until captioned), the frame times used, for captioned events whether the caption
/// was cut at the token limit (`truncated`) and how it was generated (`generation`: model, seed as
/// a string, prompt and completion tokens, finish reason), and the thumbnail file when there is one.
public enum JSONWriter {
    public static let schema = "densecap.events/1"

    public static func value(_ d: CaptionDocument, thumbnailNames: [Int: String] = [:]) -> JSONText {
        var video: [(String, JSONText)] = [("path", .string(d.video.path)), ("id", .string(d.video.id))]
        video.append(("duration", d.video.duration.map(JSONText.seconds) ?? .null))
        video.append(("duration_exact", d.video.duration.map { .string($0.rational.description) } ?? .null))
        video.append(("width", d.video.width.map(JSONText.int) ?? .null))
        video.append(("height", d.video.height.map(JSONText.int) ?? .null))
        video.append(("frame_rate", d.video.frameRate.map { .string($0.description) } ?? .null))
        video.append(("codec", d.video.codec.map(JSONText.string) ?? .null))
        let events: [JSONText] = d.events.enumerated().map { i, e in
            var fields: [(String, JSONText)] = [
                ("index", .int(i)), ("start", .seconds(e.start)), ("end", .seconds(e.end)),
                ("start_exact", .string(e.start.rational.description)), ("end_exact", .string(e.end.rational.description)),
                ("keyframe", .seconds(e.keyframe)), ("keyframe_exact", .string(e.keyframe.rational.description)),
                ("kind", .string(e.kind.rawValue)), ("confidence", .fraction(e.confidence)),
                ("static", .bool(e.isStatic)), ("skippable", .bool(e.skippable)),
                ("caption", e.caption.map(JSONText.string) ?? .null),
                ("frame_times", .array(e.frameTimes.map(JSONText.seconds))),
            ]
            if let g = e.generation {
                fields.append(("truncated", .bool(g.truncated)))
                fields.append(("generation", .object([
                    ("model", .string(g.model)), ("seed", .string(String(g.seed))), ("prompt_tokens", .int(g.promptTokens)),
                    ("completion_tokens", .int(g.completionTokens)), ("finish_reason", .string(g.finishReason)),
                ])))
            }
            if let name = thumbnailNames[i] { fields.append(("thumbnail", .string(name))) }
            return .object(fields)
        }
        var fields: [(String, JSONText)] = [
            ("schema", .string(schema)), ("generator", .string(d.generator)), ("video", .object(video)),
            ("model", d.model.map(JSONText.string) ?? .null),
            ("settings", .object(d.settings.map { ($0.0, .string($0.1)) })),
        ]
        if !d.analysis.isEmpty { fields.append(("analysis", .object(d.analysis.map { ($0.0, .string($0.1)) }))) }
        fields.append(("events", .array(events)))
        return .object(fields)
    }

    public static func render(_ d: CaptionDocument, thumbnailNames: [Int: String] = [:]) -> String {
        value(d, thumbnailNames: thumbnailNames).rendered() + "\n"
    }
}

/// One row per event: `video,index,start,end,start_timecode,end_timecode,duration,keyframe,kind,
/// confidence,static,skippable,caption` (RFC 4180 quoting; seconds with millisecond precision).
public enum CSVWriter {
    public static let header = "video,index,start,end,start_timecode,end_timecode,duration,keyframe,kind,confidence,static,skippable,caption"

    public static func render(_ documents: [CaptionDocument], header withHeader: Bool = true) -> String {
        var lines = withHeader ? [header] : []
        for d in documents {
            for (i, e) in d.events.enumerated() {
                let fields = [
                    d.video.id, String(i), e.start.secondsString, e.end.secondsString, e.start.timecode, e.end.timecode,
                    e.duration.secondsString, e.keyframe.secondsString, e.kind.rawValue,
                    JSONText.fraction(e.confidence).rendered(), String(e.isStatic), String(e.skippable), e.caption ?? "",
                ]
                lines.append(fields.map(quote).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func quote(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// SRT and WebVTT: one cue per event, the caption as its text (without a caption, the event's
/// kind and confidence, so a detector-only run still shows where events are).
public enum SubtitleWriter {
    public static func srt(_ d: CaptionDocument) -> String {
        var out = ""
        for (i, e) in d.events.enumerated() {
            // A blank line ends a cue in SRT: keep the text's lines non-empty.
            out += "\(i + 1)\n\(e.start.srtTimestamp) --> \(e.end.srtTimestamp)\n\(lines(cueText(e)).joined(separator: "\n"))\n\n"
        }
        return out
    }

    public static func webVTT(_ d: CaptionDocument) -> String {
        var out = "WEBVTT\n\n"
        for (i, e) in d.events.enumerated() {
            let text = lines(cueText(e)).map { escapeVTT($0) }.joined(separator: "\n")
            out += "event-\(i + 1)\n\(e.start.timecode) --> \(e.end.timecode)\n\(text)\n\n"
        }
        return out
    }

    static func cueText(_ e: Event) -> String {
        if let c = e.caption, !c.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return c }
        return "[\(e.kind.rawValue), confidence \(JSONText.fraction(e.confidence).rendered())]"
    }

    static func lines(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { $0.replacingOccurrences(of: "-->", with: "->") }
            .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    static func escapeVTT(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// ActivityNet Captions results, the format densevid_eval's `evaluate.py` and SODA's `soda.py`
/// read: `{"version": "VERSION 1.0", "results": {video_id: [{"sentence", "timestamp": [s, e]}]},
/// "external_data": {"used", "details"}}`. densevid_eval refuses a file without all three keys
/// (ranjaykrishna/densevid_eval@9d4045a, evaluate.py `PREDICTION_FIELDS`); SODA needs `results`.
public enum ActivityNetWriter {
    public static func value(_ documents: [CaptionDocument]) -> JSONText {
        let results: [(String, JSONText)] = documents.map { d in
            (d.video.id, .array(d.events.map { e in
                .object([("sentence", .string(e.caption ?? "")),
                         ("timestamp", .array([.seconds(e.start), .seconds(e.end)]))])
            }))
        }
        let model = documents.compactMap(\.model).first
        return .object([
            ("version", .string("VERSION 1.0")), ("results", .object(results)),
            ("external_data", .object([
                ("used", .bool(model != nil)),
                ("details", .string(model.map { "captions by \($0) through densecap" } ?? "event boundaries by densecap; no captioning model")),
            ])),
        ])
    }

    public static func render(_ documents: [CaptionDocument]) -> String { value(documents).rendered() + "\n" }
}
