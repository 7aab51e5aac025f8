import DenseCore
import Foundation
import Logging

// Qwen2 decoder (NVILA's language model). Port of transformers' Qwen2 at v4.57
// (models/qwen2/modeling_qwen2.py): pre-RMSNorm blocks, GQA attention with q/k/v bias and no
// o bias, rotate-half RoPE, SwiGLU MLP, final RMSNorm, lm_head (tied to the embeddings or not).

// MARK: - Configuration

/// `llm/config.json` of a Qwen2 checkpoint. Reads transformers-4.x keys (`rope_theta`,
/// `torch_dtype`, as the published checkpoints have) and transformers-5 keys (`rope_parameters`,
/// `dtype`) alike.
public struct Qwen2Config: Decodable, Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var intermediateSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var headDim: Int
    public var dtype: String?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case kvHeads = "num_key_value_heads", intermediateSize = "intermediate_size", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeParameters = "rope_parameters", ropeScaling = "rope_scaling"
        case tieWordEmbeddings = "tie_word_embeddings", vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings", headDim = "head_dim"
        case torchDtype = "torch_dtype", dtype, hiddenAct = "hidden_act", modelType = "model_type"
        case useSlidingWindow = "use_sliding_window"
    }

    struct RopeParameters: Decodable {
        var ropeTheta: Float?
        var ropeType: String?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type
        }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta)
            ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        layers = try c.decode(Int.self, forKey: .layers)
        heads = try c.decode(Int.self, forKey: .heads)
        kvHeads = try c.decodeIfPresent(Int.self, forKey: .kvHeads) ?? heads
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 32768
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? (heads > 0 ? hiddenSize / heads : 0)
        dtype = try c.decodeIfPresent(String.self, forKey: .torchDtype) ?? c.decodeIfPresent(String.self, forKey: .dtype)
        let parameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        ropeTheta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? parameters?.ropeTheta ?? 10_000
        let scaling = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        for (key, rope) in [("rope_parameters", parameters), ("rope_scaling", scaling)] {
            if let type = rope?.ropeType, type != "default" {
                throw ConfigError(key: "\(key).rope_type", value: type, reason: "only the default rotary embedding is supported")
            }
        }
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw ConfigError(key: "hidden_act", value: act, reason: "Qwen2 uses silu")
        }
        if let type = try c.decodeIfPresent(String.self, forKey: .modelType), !["qwen2", "qwen2_5"].contains(type) {
            throw ConfigError(key: "model_type", value: type, reason: "not a Qwen2 model")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) == true {
            throw ConfigError(key: "use_sliding_window", value: "true", reason: "sliding-window attention is not supported")
        }
    }

    /// Throws on values the engine cannot run, naming the key.
    public func validate() throws {
        for (key, v) in [("hidden_size", hiddenSize), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                         ("num_key_value_heads", kvHeads), ("intermediate_size", intermediateSize), ("vocab_size", vocabSize)]
        where v <= 0 || v > 1 << 24 {
            throw ConfigError(key: key, value: "\(v)", reason: v <= 0 ? "must be positive" : "is implausibly large")
        }
        guard heads % kvHeads == 0 else {
            throw ConfigError(key: "num_key_value_heads", value: "\(kvHeads)", reason: "must divide num_attention_heads=\(heads)")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ConfigError(key: "head_dim", value: "\(headDim)", reason: "must be even and positive")
        }
        guard ropeTheta > 0 else { throw ConfigError(key: "rope_theta", value: "\(ropeTheta)", reason: "must be positive") }
    }

    /// Reads and validates `config.json` in `directory`.
    public static func load(directory: String) throws -> Qwen2Config {
        let config = try decodeConfig(Qwen2Config.self, (directory as NSString).appendingPathComponent("config.json"))
        try config.validate()
        return config
    }
}

/// A configuration value the engine cannot use, with its key.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let key: String
    public let value: String
    public let reason: String
    public var description: String { "config key '\(key)' = \(value): \(reason)" }
}

// MARK: - Layers

/// One decoder block's weights (shapes for hidden H, heads n, KV heads g, head dim d, MLP I).
/// Matrices stay in the checkpoint's precision (`WeightMatrix`); norms and biases are Float32.
struct Qwen2Layer: Sendable {
    let inputNorm: Tensor  // [H]
    let qProj: WeightMatrix, qBias: Tensor  // [n·d, H], [n·d]
    let kProj: WeightMatrix, kBias: Tensor  // [g·d, H], [g·d]
    let vProj: WeightMatrix, vBias: Tensor  // [g·d, H], [g·d]
    let oProj: WeightMatrix  // [H, n·d]
    let postNorm: Tensor  // [H]
    let gateProj: WeightMatrix, upProj: WeightMatrix  // [I, H]
    let downProj: WeightMatrix  // [H, I]
}

/// Keys and values of every layer for the positions seen so far.
public struct KVCache: Sendable {
    /// Positions cached (the next token's position).
    public private(set) var count = 0
    var capacity: Int
    let rowWidth: Int
    var keys: [[Float]]  // per layer: capacity rows of g·d
    var values: [[Float]]

    public init(config: Qwen2Config, capacity: Int = 256) {
        rowWidth = config.kvHeads * config.headDim
        self.capacity = max(1, capacity)
        keys = Array(repeating: [Float](repeating: 0, count: self.capacity * rowWidth), count: config.layers)
        values = keys
    }

    mutating func reserve(_ total: Int) {
        guard total > capacity else { return }
        var newCapacity = capacity
        while newCapacity < total { newCapacity *= 2 }
        for l in keys.indices {
            keys[l] += [Float](repeating: 0, count: (newCapacity - capacity) * rowWidth)
            values[l] += [Float](repeating: 0, count: (newCapacity - capacity) * rowWidth)
        }
        capacity = newCapacity
    }

    mutating func append(layer: Int, keys k: Tensor, values v: Tensor) {
        let start = count * rowWidth
        keys[layer].replaceSubrange(start..<start + k.count, with: k.scalars)
        values[layer].replaceSubrange(start..<start + v.count, with: v.scalars)
    }

    mutating func advance(by n: Int) { count += n }
}

// MARK: - Model

/// What `forward` returns logits for.
public enum LogitsSelection: Sendable {
    case last, all
}

/// A loaded Qwen2 language model, immutable and shareable.
public final class Qwen2Model: Sendable {
    public let config: Qwen2Config
    let embedTokens: WeightMatrix  // [V, H]
    let layers: [Qwen2Layer]
    let finalNorm: Tensor  // [H]
    let lmHead: WeightMatrix?  // [V, H]; nil when tied to embedTokens

    /// Rows of the embedding table (the model's real vocabulary; ids at or above it are media
    /// placeholders or tokenizer-only tokens and are never embedded or generated).
    public var vocabularyRows: Int { embedTokens.rows }

    /// The arithmetic of the matrix products (the embedding lookup always reads the stored rows).
    public let precision: Precision

    /// Loads weights under `prefix` (`model.` / `lm_head.` for the published checkpoints).
    /// - Parameter precision: fp32 keeps the stored weights (bf16 products widen exactly);
    ///   bf16 / int8 convert each matrix as it is read, never the whole model at once.
    public init(config: Qwen2Config, weights: WeightSource, prefix: String = "", precision: Precision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        let (H, n, g, d, I) = (config.hiddenSize, config.heads, config.kvHeads, config.headDim, config.intermediateSize)
        let root = WeightScope(weights).scoped(prefix + "model")
        // The real vocabulary is the embedding's row count (NVILA's config and file can differ
        // after resize_token_embeddings); read it from the file.
        let rows = weights.shape(of: prefix + "model.embed_tokens.weight")?.first ?? config.vocabSize
        embedTokens = try root.matrix("embed_tokens.weight", shape: [rows, H])
        func matrix(_ scope: WeightScope, _ name: String, _ shape: [Int]) throws -> WeightMatrix {
            try scope.matrix(name, shape: shape).converted(to: precision)
        }
        layers = try (0..<config.layers).map { i in
            let l = root.scoped("layers").scoped("\(i)")
            let attn = l.scoped("self_attn"), mlp = l.scoped("mlp")
            return Qwen2Layer(
                inputNorm: try l("input_layernorm.weight", shape: [H]),
                qProj: try matrix(attn, "q_proj.weight", [n * d, H]), qBias: try attn("q_proj.bias", shape: [n * d]),
                kProj: try matrix(attn, "k_proj.weight", [g * d, H]), kBias: try attn("k_proj.bias", shape: [g * d]),
                vProj: try matrix(attn, "v_proj.weight", [g * d, H]), vBias: try attn("v_proj.bias", shape: [g * d]),
                oProj: try matrix(attn, "o_proj.weight", [H, n * d]),
                postNorm: try l("post_attention_layernorm.weight", shape: [H]),
                gateProj: try matrix(mlp, "gate_proj.weight", [I, H]), upProj: try matrix(mlp, "up_proj.weight", [I, H]),
                downProj: try matrix(mlp, "down_proj.weight", [H, I]))
        }
        finalNorm = try root("norm.weight", shape: [H])
        if config.tieWordEmbeddings {
            // Tied: fp32 multiplies the embedding table itself; other precisions need their own copy.
            lmHead = precision == .fp32 ? nil : embedTokens.converted(to: precision)
        } else {
            lmHead = try WeightScope(weights).scoped(prefix + "lm_head").matrix("weight", shape: [rows, H]).converted(to: precision)
        }
    }

    /// Loads `config.json` and the safetensors in `directory` (a transformers Qwen2 checkpoint or
    /// NVILA's `llm/` folder).
    /// Strict by default: tensors nothing reads are an error (`WeightError.unused`) unless
    /// `allowExtraTensors`, which logs them instead.
    public static func load(directory: String, logger: Logger, precision: Precision = .fp32, allowExtraTensors: Bool = false) throws -> Qwen2Model {
        let config = try Qwen2Config.load(directory: directory)
        let store = try WeightStore(directory: directory)
        let model = try Qwen2Model(config: config, weights: store, precision: precision)
        // A tied checkpoint may still carry lm_head.weight; it is unused by construction.
        let unused = store.unconsumed.filter { !(config.tieWordEmbeddings && $0 == "lm_head.weight") }
        if !unused.isEmpty && !allowExtraTensors { throw WeightError.unused(unused, location: directory) }
        if !unused.isEmpty {
            logger.warning("\(directory): \(unused.count) tensors not used by Qwen2: \(unused.prefix(5).joined(separator: ", "))\(unused.count > 5 ? ", …" : "")")
        }
        return model
    }

    /// Embeddings of token ids. - Returns: `[ids.count, H]`
    /// - Throws: `GenerationError.idOutsideVocabulary` for ids the embedding table lacks.
    public func embed(_ ids: [Int]) throws -> Tensor {
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabularyRows }) {
            throw GenerationError.idOutsideVocabulary(id: bad, rows: vocabularyRows)
        }
        return gatherRows(embedTokens, ids)
    }

    /// Runs the decoder over `embeddings` `[L, H]` at positions `cache.count ..< cache.count + L`
    /// (the whole prompt in one pass: every projection is one GEMM over L rows) and appends their
    /// keys and values to `cache`.
    /// - Returns: logits `[1, V]` for the last position, or `[L, V]` with `.all`.
    public func forward(_ embeddings: Tensor, cache: inout KVCache, logits selection: LogitsSelection = .last) -> Tensor {
        var hidden = decode(embeddings, cache: &cache)
        if selection == .last, hidden.shape[0] > 1 {
            let H = config.hiddenSize
            hidden = Tensor(shape: [1, H], scalars: Array(hidden.scalars[(hidden.count - H)...]))
        }
        return linear(rmsNorm(hidden, weight: finalNorm, eps: config.rmsNormEps), weight: lmHead ?? embedTokens)
    }

    /// The decoder blocks without the final norm and head. - Returns: `[L, H]`
    func decode(_ embeddings: Tensor, cache: inout KVCache, inspect: ((String, Tensor) -> Void)? = nil) -> Tensor {
        let L = embeddings.shape[0]
        precondition(embeddings.rank == 2 && embeddings.shape[1] == config.hiddenSize,
            "forward: embeddings \(embeddings.shape) for hidden \(config.hiddenSize)")
        let (n, g, d) = (config.heads, config.kvHeads, config.headDim)
        let start = cache.count
        cache.reserve(start + L)
        let (cosT, sinT) = ropeTables(positions: start..<start + L, headDim: d, theta: config.ropeTheta)
        var hidden = embeddings
        for (i, layer) in layers.enumerated() {
            let normed = rmsNorm(hidden, weight: layer.inputNorm, eps: config.rmsNormEps)
            inspect?("layers.\(i).input_layernorm", normed)
            var q = linear(normed, weight: layer.qProj, bias: layer.qBias)
            var k = linear(normed, weight: layer.kProj, bias: layer.kBias)
            let v = linear(normed, weight: layer.vProj, bias: layer.vBias)
            applyRotary(&q, heads: n, cos: cosT, sin: sinT)
            applyRotary(&k, heads: g, cos: cosT, sin: sinT)
            cache.append(layer: i, keys: k, values: v)
            let context = cache.keys[i].withUnsafeBufferPointer { kp in
                cache.values[i].withUnsafeBufferPointer { vp in
                    attention(q: q, keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: start + L,
                              heads: n, kvHeads: g, headDim: d, causal: true)
                }
            }
            let attn = linear(context, weight: layer.oProj)
            inspect?("layers.\(i).attn_output", attn)
            addInPlace(&hidden, attn)
            let post = rmsNorm(hidden, weight: layer.postNorm, eps: config.rmsNormEps)
            var gate = linear(post, weight: layer.gateProj)
            siluMultiply(&gate, linear(post, weight: layer.upProj))
            let mlp = linear(gate, weight: layer.downProj)
            inspect?("layers.\(i).mlp_output", mlp)
            addInPlace(&hidden, mlp)
            inspect?("layers.\(i).output", hidden)
        }
        cache.advance(by: L)
        return hidden
    }
}
