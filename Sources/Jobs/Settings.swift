import CaptionWriters
import DenseCore
import EventSegmenter
import Foundation
import FrameSampler

// A job's settings are one Codable value: its encoding (sorted keys) is recorded in the outputs
// and in the manifest, and a rerun compares it, so no option can be left out of either.

/// How frames reach the pixel detectors.
public struct DetectionSettings: Codable, Equatable, Sendable {
    /// Frames per second shown to the detectors; nil: every frame (PySceneDetect's way).
    public var rate: Rational? = Rational(4)
    /// Analysis width (height keeps the display aspect; never upscaled).
    public var width = 256
    public var window = TimeWindow()
    public var segmenter = SegmenterConfiguration()
    /// Move each hard cut to its exact frame (decodes the frames between the samples around it).
    public var refine = false

    public init() {}
}

/// Which files a job writes next to (or under `--out` for) each input.
public struct OutputSettings: Codable, Equatable, Sendable {
    public var formats: [CaptionFormat] = [.json, .csv]
    /// Width of the keyframe thumbnails (PNG, in `<name>.thumbs/`); nil writes none.
    public var thumbnailWidth: Int?

    public init(formats: [CaptionFormat] = [.json, .csv], thumbnailWidth: Int? = nil) {
        self.formats = formats
        self.thumbnailWidth = thumbnailWidth
    }
}

/// Everything that decides what `segment` writes.
public struct SegmentSettings: Codable, Equatable, Sendable {
    public var detection = DetectionSettings()
    public var output = OutputSettings()

    public init() {}
}

/// How the vision tower is spent on finding semantic boundaries.
public enum SemanticMode: String, Codable, Sendable, CaseIterable {
    /// Two probes per event (its first and last caption frame) and a bisection where they differ:
    /// tower passes grow with the events, not the duration.
    case probe
    /// Every frame at the model rate through the tower, a running-mean novelty detector over them.
    case everyFrame = "every-frame"
    /// No semantic boundaries: the tower sees only caption frames.
    case off
}

/// Everything that decides what `caption` writes (the model is recorded beside it, by identity).
public struct CaptionSettings: Codable, Equatable, Sendable {
    public var detection: DetectionSettings
    public var output = OutputSettings(formats: [.json, .srt, .vtt, .activitynet, .html], thumbnailWidth: 320)
    /// The grid of frames the tower may see: t_k = start + k / rate, each the first decoded frame
    /// at or after t_k.
    public var modelRate = Rational(1)
    /// Frames per caption, uniform within the event (nil: the checkpoint's `num_video_frames`).
    public var framesPerEvent: Int?
    public var semantic = SemanticMode.probe
    public var prompt = CaptionSettings.defaultPrompt
    public var system: String?
    public var maxNewTokens = 128
    /// 0 is greedy.
    public var temperature: Float = 0
    public var topP: Float = 1
    public var seed: UInt64 = 0
    /// Caption the events gating marked skippable too.
    public var captionSkippable = false

    public static let defaultPrompt =
        "Describe what happens in this video segment in one to three sentences. Mention people, objects and actions that are visible."

    public init() {
        detection = DetectionSettings()
        detection.segmenter.fuser.minimumLength = MediaTime(seconds: 1)
    }
}

extension Encodable {
    /// The canonical encoding: sorted keys, so equal values give equal bytes.
    func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// The encoding flattened to `path.to.key = value` text pairs in key order, as outputs record
    /// settings (exact rationals as `n/d`, lists comma-separated).
    func settingsPairs() throws -> [(String, String)] {
        var pairs: [(String, String)] = []
        func walk(_ value: SettingsValue, _ path: String) {
            switch value {
            case .object(let fields):
                if fields.count == 2, case .int(let n)? = fields["numerator"], case .int(let d)? = fields["denominator"] {
                    pairs.append((path, d == 1 ? "\(n)" : "\(n)/\(d)"))
                    return
                }
                for key in fields.keys.sorted() { walk(fields[key]!, path.isEmpty ? key : "\(path).\(key)") }
            case .array(let items):
                if items.allSatisfy(\.isScalar) {
                    pairs.append((path, items.map(\.text).joined(separator: ",")))
                } else {
                    for (i, v) in items.enumerated() { walk(v, "\(path)[\(i)]") }
                }
            default:
                pairs.append((path, value.text))
            }
        }
        walk(try JSONDecoder().decode(SettingsValue.self, from: try canonicalJSON()), "")
        return pairs
    }
}

/// A JSON value read back from a settings encoding, to flatten it.
private indirect enum SettingsValue: Decodable {
    case null, bool(Bool), int(Int64), unsigned(UInt64), double(Double), string(String)
    case array([SettingsValue]), object([String: SettingsValue])

    init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            var fields: [String: SettingsValue] = [:]
            for key in keyed.allKeys { fields[key.stringValue] = try keyed.decode(SettingsValue.self, forKey: key) }
            self = .object(fields)
        } else if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [SettingsValue] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(SettingsValue.self)) }
            self = .array(items)
        } else {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .int(i) }
            else if let u = try? c.decode(UInt64.self) { self = .unsigned(u) }
            else if let d = try? c.decode(Double.self) { self = .double(d) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    var text: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): "\(i)"
        case .unsigned(let u): "\(u)"
        case .double(let d): "\(d)"
        case .string(let s): s
        case .array(let items): items.map(\.text).joined(separator: ",")
        case .object: "{…}"
        }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
