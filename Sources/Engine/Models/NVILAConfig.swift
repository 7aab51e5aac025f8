import DenseCore
import Foundation
import TemporalCompress

// The top-level configuration of an NVILA checkpoint: how images and videos become visual
// tokens. Field meanings follow NVlabs/VILA llava/model/configuration_llava.py at b760c34
// (defaults there: min_tiles 1, max_tiles 12, video_max_tiles 1, Basic image/video encoders).

/// How a single image is cut into tower inputs (`image_aspect_ratio`).
public enum ImageMode: Sendable, Equatable {
    /// Dynamic-S2 multi-scale tiles merged into one grid (NVILA, NVILA-15B).
    case dynamicS2(scales: [Int])
    /// InternVL-style tiles plus a thumbnail, each an independent image (NVILA-Lite).
    case dynamic
    /// Squash to the tower's size.
    case resize
    /// Pad to a square with the processor's mean colour, then squash (VILA's NIAH scripts).
    case pad
}

/// What wraps each frame's (or temporal group's) tokens for the LLM (`video_encoder`).
public enum VideoEncoderKind: Sendable, Equatable {
    /// Per frame: tokens then the embedding of `end` (default "\n").
    case basic(start: String?, end: String?)
    /// Temporal-spatial pooling of consecutive frames after the projector (TSPVideoEncoder).
    case tsp(poolSizes: [PoolSize], start: String?, end: String?, separator: String?)
}

/// What wraps an image's tokens (`image_encoder`, BasicImageEncoder).
public struct ImageEncoderTokens: Sendable, Equatable {
    public var start: String?
    public var end: String?
}

/// The top-level `config.json` of an NVILA checkpoint, in either published layout.
public struct NVILAConfig: Sendable, Equatable {
    public var imageMode: ImageMode
    /// Whether tower features go through the Dynamic-S2 merge (`dynamic_s2`); frames and
    /// multi-image prompts then repeat their single-scale features once per scale.
    public var dynamicS2: Bool
    public var scales: [Int]
    public var selectLayer: Int
    public var numVideoFrames: Int
    public var minTiles: Int
    public var maxTiles: Int
    public var videoMaxTiles: Int
    public var mmHiddenSize: Int?
    public var imageEncoder: ImageEncoderTokens
    public var videoEncoder: VideoEncoderKind
    /// The chat template the top-level config overrides with, if any.
    public var chatTemplate: String?

    /// Parses the top-level configuration dictionary. Unsupported values throw `ConfigError`
    /// naming the key.
    public init(json: [String: Any]) throws {
        func int(_ key: String) throws -> Int? {
            guard let value = json[key], !(value is NSNull) else { return nil }
            if let n = value as? Int { return n }
            if let d = value as? Double, let n = Int(exactly: d) { return n }  // 1e30 is an error, not a trap
            if let s = value as? String, let n = Int(s) { return n }
            throw ConfigError(key: key, value: "\(value)", reason: "expected an integer")
        }
        func string(_ key: String) throws -> String? {
            guard let value = json[key], !(value is NSNull) else { return nil }
            guard let s = value as? String else { throw ConfigError(key: key, value: "\(value)", reason: "expected a string") }
            return s
        }
        func bool(_ key: String) -> Bool { (json[key] as? Bool) ?? ((json[key] as? NSNumber)?.boolValue ?? false) }

        dynamicS2 = bool("dynamic_s2")
        if bool("s2") && !dynamicS2 {
            throw ConfigError(key: "s2", value: "true", reason: "plain S2 (VILA-1.5) is not an NVILA mode; only dynamic_s2 is supported")
        }
        if bool("ps3") { throw ConfigError(key: "ps3", value: "true", reason: "PS3 vision towers are not supported") }
        scales = try Self.parseScales(json["s2_scales"])
        if let idx = try int("s2_resize_output_to_scale_idx"), dynamicS2, idx != -1, idx != scales.count - 1 {
            throw ConfigError(key: "s2_resize_output_to_scale_idx", value: "\(idx)",
                              reason: "only merging to the largest scale (-1) is supported")
        }
        if let maxSplit = try int("s2_max_split_size"), dynamicS2, let first = scales.first, maxSplit != first {
            throw ConfigError(key: "s2_max_split_size", value: "\(maxSplit)", reason: "must equal the smallest scale \(first)")
        }
        let aspect = try string("image_aspect_ratio") ?? "resize"
        switch aspect {
        case "dynamic_s2":
            guard dynamicS2 else {
                throw ConfigError(key: "image_aspect_ratio", value: aspect, reason: "needs \"dynamic_s2\": true")
            }
            imageMode = .dynamicS2(scales: scales)
        case "dynamic": imageMode = .dynamic
        case "resize": imageMode = .resize
        case "pad": imageMode = .pad
        default:
            throw ConfigError(key: "image_aspect_ratio", value: aspect, reason: "supported: dynamic_s2, dynamic, resize, pad")
        }
        selectLayer = try int("mm_vision_select_layer") ?? -2
        if let feature = try string("mm_vision_select_feature"), feature != "cls_patch" {
            throw ConfigError(key: "mm_vision_select_feature", value: feature,
                              reason: "only cls_patch (every patch token) is supported; SigLIP has no CLS token to drop")
        }
        numVideoFrames = try int("num_video_frames") ?? 8
        minTiles = try int("min_tiles") ?? 1
        maxTiles = try int("max_tiles") ?? 12
        videoMaxTiles = try int("video_max_tiles") ?? 1
        if videoMaxTiles < 1 { throw ConfigError(key: "video_max_tiles", value: "\(videoMaxTiles)", reason: "must be at least 1") }
        if minTiles < 1 || maxTiles < minTiles {
            throw ConfigError(key: "max_tiles", value: "\(maxTiles)", reason: "need 1 ≤ min_tiles (\(minTiles)) ≤ max_tiles")
        }
        mmHiddenSize = try int("mm_hidden_size")
        chatTemplate = try string("chat_template")
        imageEncoder = try Self.parseImageEncoder(json["image_encoder"])
        videoEncoder = try Self.parseVideoEncoder(json["video_encoder"])
    }

    /// `s2_scales`: a comma-separated string in the published configs, a list in some copies.
    static func parseScales(_ value: Any?) throws -> [Int] {
        let fallback = [448, 896, 1344]
        guard let value, !(value is NSNull) else { return fallback }
        var scales: [Int]
        if let s = value as? String {
            scales = try s.split(separator: ",").map {
                guard let n = Int($0.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigError(key: "s2_scales", value: s, reason: "expected comma-separated integers")
                }
                return n
            }
        } else if let list = value as? [NSNumber], let ints = Optional(list.compactMap(exactInt)), ints.count == list.count {
            scales = ints
        } else {
            throw ConfigError(key: "s2_scales", value: "\(value)", reason: "expected \"448,896,1344\" or a list")
        }
        scales.sort()
        guard let first = scales.first, first > 0, scales.last! <= 1 << 16, scales.allSatisfy({ $0 % first == 0 }) else {
            throw ConfigError(key: "s2_scales", value: "\(scales)", reason: "every scale must be a multiple of the smallest")
        }
        return scales
    }

    /// An encoder setting: a JSON string (as VILA saves it) or an object with hydra's `_target_`.
    static func encoderObject(_ value: Any?, key: String) throws -> [String: Any]? {
        guard let value, !(value is NSNull) else { return nil }
        if let object = value as? [String: Any] { return object }
        if let text = value as? String, let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            return object
        }
        throw ConfigError(key: key, value: "\(value)", reason: "expected a JSON object with \"_target_\"")
    }

    static func tokens(_ object: [String: Any], _ key: String, default value: String?) -> String? {
        guard let entry = object[key] else { return value }
        return entry as? String  // JSON null: no tokens
    }

    static func parseImageEncoder(_ value: Any?) throws -> ImageEncoderTokens {
        guard let object = try encoderObject(value, key: "image_encoder") else { return ImageEncoderTokens(start: nil, end: "\n") }
        let target = object["_target_"] as? String ?? ""
        guard target.hasSuffix("BasicImageEncoder") else {
            throw ConfigError(key: "image_encoder._target_", value: target, reason: "only BasicImageEncoder is supported")
        }
        return ImageEncoderTokens(start: tokens(object, "start_tokens", default: nil), end: tokens(object, "end_tokens", default: "\n"))
    }

    static func parseVideoEncoder(_ value: Any?) throws -> VideoEncoderKind {
        guard let object = try encoderObject(value, key: "video_encoder") else { return .basic(start: nil, end: "\n") }
        let target = object["_target_"] as? String ?? ""
        let start = tokens(object, "start_tokens", default: nil), end = tokens(object, "end_tokens", default: "\n")
        if target.hasSuffix("BasicVideoEncoder") { return .basic(start: start, end: end) }
        guard target.hasSuffix("TSPVideoEncoder") else {
            throw ConfigError(key: "video_encoder._target_", value: target, reason: "supported: BasicVideoEncoder, TSPVideoEncoder")
        }
        guard let raw = object["pool_sizes"] as? [[NSNumber]], !raw.isEmpty, raw.allSatisfy({ $0.count == 3 }) else {
            throw ConfigError(key: "video_encoder.pool_sizes", value: "\(object["pool_sizes"] ?? "missing")",
                              reason: "expected a list of [t, h, w]")
        }
        let sizes = raw.map { PoolSize(t: exactInt($0[0]) ?? -1, h: exactInt($0[1]) ?? -1, w: exactInt($0[2]) ?? -1) }
        if let bad = sizes.first(where: { $0.t < 1 || $0.h < 1 || $0.w < 1 || max($0.t, $0.h, $0.w) > 1 << 16 }) {
            throw ConfigError(key: "video_encoder.pool_sizes", value: "\(bad)", reason: "sizes must be positive and plausible")
        }
        return .tsp(poolSizes: sizes, start: start, end: end, separator: tokens(object, "sep_tokens", default: nil))
    }
}

/// A JSON number as an Int when it is one exactly (1e30 or 2.5 give nil rather than a trap).
func exactInt(_ number: NSNumber) -> Int? { Int(exactly: number.doubleValue) }

extension NVILAConfig {
    /// The square a video frame can be squashed to as it is decoded, with `tiles` tiles per frame
    /// and the tower's `tileSize`: the model squashes each frame to its tile anyway (a copy when
    /// the frame already has that size), so squashing early changes no pixel and keeps a long
    /// range small. nil when frames are tiled (`tiles` > 1) or padded to a square first.
    public func videoFrameSquash(tiles: Int, tileSize: Int) -> Int? {
        tiles == 1 && imageMode != .pad ? tileSize : nil
    }
}
