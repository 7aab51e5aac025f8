import DenseCore
import Foundation
import Logging

// Loading NVILA checkpoints unchanged, in the two published layouts (nvila-spec §1.2, §1.4):
//  - original (`llava_llama`): top-level config.json + llm/ (Qwen2ForCausalLM and tokenizer),
//    vision_tower/ (SiglipVisionModel), mm_projector/ (config.json with mm_projector_type);
//  - "-hf" single folder: one config.json with text_config / vision_config, the tokenizer at the
//    top, and one set of safetensors whose names carry `llm.`, `vision_tower.`, `mm_projector.`.

/// Which on-disk layout a checkpoint folder has.
public enum NVILALayout: String, Sendable {
    case original, singleFolder
}

extension NVILAConfig {
    /// Reads the top-level `config.json` of a checkpoint folder (either layout).
    public static func load(directory: String) throws -> NVILAConfig {
        try NVILAConfig(json: readJSON((directory as NSString).appendingPathComponent("config.json")))
    }
}

extension SiglipVisionConfig {
    /// The vision tower's configuration of a checkpoint folder (either layout).
    public static func load(checkpoint directory: String) throws -> SiglipVisionConfig {
        func path(_ p: String) -> String { (directory as NSString).appendingPathComponent(p) }
        if try NVILAModel.layout(of: directory) == .original {
            return try decodeConfig(SiglipVisionConfig.self, path("vision_tower/config.json"))
        }
        guard let vision = try readJSON(path("config.json"))["vision_config"] as? [String: Any] else {
            throw ConfigError(key: "vision_config", value: path("config.json"), reason: "missing")
        }
        return try JSONDecoder().decode(SiglipVisionConfig.self, from: JSONSerialization.data(withJSONObject: vision))
    }
}

extension NVILAModel {
    /// Whether `directory` looks like an NVILA checkpoint (either layout) rather than a plain LLM.
    public static func isCheckpoint(directory: String) -> Bool {
        (try? layout(of: directory)) != nil
    }

    /// The layout of the checkpoint in `directory`.
    /// - Throws: `ConfigError` when it is neither.
    public static func layout(of directory: String) throws -> NVILALayout {
        let fm = FileManager.default
        func exists(_ path: String) -> Bool { fm.fileExists(atPath: (directory as NSString).appendingPathComponent(path)) }
        if exists("llm/config.json") && exists("vision_tower/config.json") && exists("mm_projector/config.json") {
            return .original
        }
        if let json = try? readJSON((directory as NSString).appendingPathComponent("config.json")),
            json["text_config"] != nil, json["vision_config"] != nil
        {
            return .singleFolder
        }
        throw ConfigError(key: "config.json", value: directory,
                          reason: "not an NVILA checkpoint (need llm/, vision_tower/ and mm_projector/, or a config with text_config and vision_config)")
    }

    /// Loads an NVILA checkpoint folder. Tensors the model does not use (the tower's last block
    /// and post-LayerNorm) are expected; any other left-over is logged.
    /// - Parameters:
    ///   - precision: the arithmetic of the tower, projector and LLM (default: fp32)
    ///   - allowExtraTensors: log tensors nothing reads instead of refusing the checkpoint
    ///     (loading is strict by default, as candle's is: a stray tensor usually means a
    ///     mismatched or corrupt file)
    /// - Throws: `WeightError.unused` for left-over tensors unless allowed, and every error of
    ///   the parts' loaders.
    public static func load(directory: String, logger: Logger, precision: PrecisionSettings = .fp32,
                            allowExtraTensors: Bool = false) throws -> NVILAModel {
        switch try layout(of: directory) {
        case .original:
            return try loadOriginal(directory: directory, logger: logger, precision: precision, allowExtraTensors: allowExtraTensors)
        case .singleFolder:
            return try loadSingleFolder(directory: directory, logger: logger, precision: precision, allowExtraTensors: allowExtraTensors)
        }
    }

    static func loadOriginal(directory: String, logger: Logger, precision: PrecisionSettings, allowExtraTensors: Bool) throws -> NVILAModel {
        func path(_ p: String) -> String { (directory as NSString).appendingPathComponent(p) }
        let config = try NVILAConfig.load(directory: directory)
        let llmDirectory = path("llm")
        let tokenizer = try BPETokenizer.load(directory: llmDirectory)
        let llm = try Qwen2Model.load(directory: llmDirectory, logger: logger, precision: precision.llm, allowExtraTensors: allowExtraTensors)

        let towerConfig = try SiglipVisionConfig.load(checkpoint: directory)
        let towerStore = try WeightStore(directory: path("vision_tower"))
        let tower = try SiglipVisionModel(config: towerConfig, weights: towerStore, selectLayer: config.selectLayer,
                                          precision: precision.tower)
        try checkPreprocessor(path("vision_tower/preprocessor_config.json"), tower: towerConfig)
        try checkUnused(towerStore, expected: tower.unusedTensorPrefixes(), what: "vision_tower", allow: allowExtraTensors, logger: logger)

        let projectorJSON = try readJSON(path("mm_projector/config.json"))
        guard let typeName = projectorJSON["mm_projector_type"] as? String else {
            throw ConfigError(key: "mm_projector_type", value: path("mm_projector/config.json"), reason: "missing")
        }
        let projectorStore = try WeightStore(directory: path("mm_projector"))
        let projector = try MultimodalProjector(
            type: try ProjectorType(configValue: typeName),
            inputChannels: config.mmHiddenSize ?? (config.dynamicS2 ? config.scales.count : 1) * towerConfig.hiddenSize,
            outputChannels: llm.config.hiddenSize, weights: projectorStore, precision: precision.projector)
        try checkUnused(projectorStore, expected: [], what: "mm_projector", allow: allowExtraTensors, logger: logger)
        return try NVILAModel(config: config, llm: llm, tokenizer: tokenizer, tower: tower, projector: projector)
    }

    static func loadSingleFolder(directory: String, logger: Logger, precision: PrecisionSettings, allowExtraTensors: Bool) throws -> NVILAModel {
        func path(_ p: String) -> String { (directory as NSString).appendingPathComponent(p) }
        var top = try readJSON(path("config.json"))
        // The "-hf" configs carry no VILA keys: their model_type fixes them (SGLang's nvila.py
        // hard-codes Dynamic-S2 over 448/896/1344 with mlp_downsample; nvila_lite.py InternVL tiles
        // with mlp_downsample_3x3_fix). Keys that are present win.
        let implied: [String: Any]
        switch top["model_type"] as? String {
        case "nvila":
            implied = ["image_aspect_ratio": "dynamic_s2", "dynamic_s2": true, "s2_scales": "448,896,1344",
                       "mm_projector_type": "mlp_downsample"]
        case "nvila_lite":
            implied = ["image_aspect_ratio": "dynamic", "mm_projector_type": "mlp_downsample_3x3_fix"]
        case let other:
            throw ConfigError(key: "model_type", value: other ?? "missing", reason: "single-folder checkpoints must be nvila or nvila_lite")
        }
        top.merge(implied) { present, _ in present }
        let config = try NVILAConfig(json: top)
        let tokenizer = try BPETokenizer.load(directory: directory)
        let store = try WeightStore(directory: directory)

        guard let textJSON = top["text_config"] as? [String: Any] else {
            throw ConfigError(key: "text_config", value: path("config.json"), reason: "missing")
        }
        let llmConfig = try JSONDecoder().decode(Qwen2Config.self, from: JSONSerialization.data(withJSONObject: textJSON))
        let llm = try Qwen2Model(config: llmConfig, weights: store, prefix: "llm.", precision: precision.llm)
        let towerConfig = try SiglipVisionConfig.load(checkpoint: directory)
        let tower = try SiglipVisionModel(config: towerConfig, weights: store, prefix: "vision_tower.", selectLayer: config.selectLayer,
                                          precision: precision.tower)
        let typeName =
            (top["mm_projector_type"] as? String) ?? ((top["mm_projector_cfg"] as? [String: Any])?["mm_projector_type"] as? String)
            ?? (top["projector_type"] as? String)
        guard let typeName else {
            throw ConfigError(key: "mm_projector_type", value: path("config.json"), reason: "missing")
        }
        let projector = try MultimodalProjector(
            type: try ProjectorType(configValue: typeName),
            inputChannels: config.mmHiddenSize ?? (config.dynamicS2 ? config.scales.count : 1) * towerConfig.hiddenSize,
            outputChannels: llmConfig.hiddenSize, weights: store, prefix: "mm_projector.", precision: precision.projector)
        var expected = tower.unusedTensorPrefixes(prefix: "vision_tower.")
        if llmConfig.tieWordEmbeddings { expected.append("llm.lm_head.weight") }
        try checkUnused(store, expected: expected, what: "checkpoint", allow: allowExtraTensors, logger: logger)
        return try NVILAModel(config: config, llm: llm, tokenizer: tokenizer, tower: tower, projector: projector)
    }

    /// The tower's processor must squash to its own size with bicubic and scale to [−1, 1]; other
    /// settings would change every pixel, so they are errors rather than silently ignored.
    static func checkPreprocessor(_ path: String, tower: SiglipVisionConfig) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let json = try readJSON(path)
        if let resample = json["resample"] as? NSNumber, exactInt(resample) != 3 {
            throw ConfigError(key: "preprocessor_config.resample", value: "\(resample)", reason: "only 3 (bicubic) is supported")
        }
        for key in ["image_mean", "image_std"] {
            if let values = json[key] as? [NSNumber], values.contains(where: { abs($0.doubleValue - 0.5) > 1e-6 }) {
                throw ConfigError(key: "preprocessor_config.\(key)", value: "\(values)", reason: "only 0.5 per channel is supported")
            }
        }
        if let size = json["size"] as? [String: NSNumber],
            size.values.contains(where: { exactInt($0) != tower.imageSize })
        {
            throw ConfigError(key: "preprocessor_config.size", value: "\(size)", reason: "must equal the tower's image_size \(tower.imageSize)")
        }
    }

    /// Tensors nobody read, other than names under `prefixes`: an error, or a warning when allowed.
    static func checkUnused(_ store: WeightStore, expected prefixes: [String], what: String, allow: Bool, logger: Logger) throws {
        let unused = store.unconsumed.filter { name in !prefixes.contains { name.hasPrefix($0) } }
        if !unused.isEmpty && !allow { throw WeightError.unused(unused, location: store.location) }
        if !unused.isEmpty {
            logger.warning("\(store.location): \(unused.count) \(what) tensors not used: \(unused.prefix(5).joined(separator: ", "))\(unused.count > 5 ? ", …" : "")")
        }
    }
}

/// A JSON object file. - Throws: `ConfigError` naming the file.
func readJSON(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigError(key: (path as NSString).lastPathComponent, value: path, reason: "file not found")
    }
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ConfigError(key: (path as NSString).lastPathComponent, value: path, reason: "not a JSON object")
    }
    return object
}

/// A `Decodable` config file, with decoding errors turned into `ConfigError` naming the key.
func decodeConfig<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigError(key: (path as NSString).lastPathComponent, value: path, reason: "file not found")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as ConfigError {
        throw error
    } catch let DecodingError.keyNotFound(key, _) {
        throw ConfigError(key: key.stringValue, value: path, reason: "missing")
    } catch let DecodingError.typeMismatch(_, context) {
        throw ConfigError(key: context.codingPath.map(\.stringValue).joined(separator: "."), value: path, reason: "wrong type")
    } catch {
        throw ConfigError(key: (path as NSString).lastPathComponent, value: path, reason: "not valid JSON")
    }
}
