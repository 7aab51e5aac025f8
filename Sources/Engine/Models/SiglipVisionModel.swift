import DenseCore
import Foundation

// SigLIP vision tower as NVILA uses it (SigLIP-so400m-patch14-448). Port of transformers'
// SiglipVisionModel at v4.46 (models/siglip/modeling_siglip.py): Conv2d patch embedding (k = s =
// patch size, no padding) as one GEMM, learned position embeddings (no interpolation), pre-LN
// encoder blocks with tanh GELU. NVILA takes `hidden_states[mm_vision_select_layer]` (−2: the
// output of the second-to-last block) and never applies `post_layernorm` (nvila-spec §3).

// MARK: - Configuration

/// `vision_tower/config.json` (a `SiglipVisionConfig`), or the `vision_config` of an "-hf" checkpoint.
public struct SiglipVisionConfig: Decodable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var imageSize: Int
    public var patchSize: Int
    public var channels: Int
    public var layerNormEps: Float
    public var hiddenAct: String

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", layers = "num_hidden_layers"
        case heads = "num_attention_heads", imageSize = "image_size", patchSize = "patch_size"
        case channels = "num_channels", layerNormEps = "layer_norm_eps", hiddenAct = "hidden_act"
        case modelType = "model_type", visionConfig = "vision_config"
    }

    public init(
        hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, imageSize: Int = 448, patchSize: Int = 14,
        channels: Int = 3, layerNormEps: Float = 1e-6, hiddenAct: String = "gelu_pytorch_tanh"
    ) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.channels = channels
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
    }

    public init(from decoder: Decoder) throws {
        var c = try decoder.container(keyedBy: CodingKeys.self)
        // A full SiglipConfig (text + vision) nests the vision part; the tower's own file does not.
        if c.contains(.visionConfig), !c.contains(.hiddenSize) {
            c = try c.nestedContainer(keyedBy: CodingKeys.self, forKey: .visionConfig)
        }
        // Defaults are SiglipVisionConfig's own (transformers 4.46).
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 768
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 3072
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? 12
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? 12
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? 224
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 16
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? 3
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-6
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu_pytorch_tanh"
        if let type = try c.decodeIfPresent(String.self, forKey: .modelType),
            !["siglip_vision_model", "siglip"].contains(type)
        {
            throw ConfigError(key: "vision_tower.model_type", value: type, reason: "not a SigLIP vision tower")
        }
    }

    /// Patches per side (448 / 14 = 32).
    public var gridSide: Int { imageSize / patchSize }
    public var headDim: Int { hiddenSize / heads }

    /// The GELU of `hidden_act`.
    var activation: Activation {
        get throws {
            switch hiddenAct {
            case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": return .geluTanh
            case "gelu": return .geluErf
            default:
                throw ConfigError(key: "vision_tower.hidden_act", value: hiddenAct, reason: "only GELU (tanh or erf) is supported")
            }
        }
    }

    public func validate() throws {
        for (key, v) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", layers),
                         ("num_attention_heads", heads), ("image_size", imageSize), ("patch_size", patchSize)]
        where v <= 0 || v > 1 << 20 {
            throw ConfigError(key: "vision_tower.\(key)", value: "\(v)", reason: v <= 0 ? "must be positive" : "is implausibly large")
        }
        guard channels == 3 else { throw ConfigError(key: "vision_tower.num_channels", value: "\(channels)", reason: "only RGB is supported") }
        guard imageSize % patchSize == 0 else {
            throw ConfigError(key: "vision_tower.patch_size", value: "\(patchSize)", reason: "must divide image_size=\(imageSize)")
        }
        guard hiddenSize % heads == 0 else {
            throw ConfigError(key: "vision_tower.num_attention_heads", value: "\(heads)", reason: "must divide hidden_size=\(hiddenSize)")
        }
        _ = try activation
    }
}

// MARK: - Layers

/// One encoder block (hidden C, MLP width I). At fp32 the weights are widened to Float32 once at
/// load: every tile multiplies them with 1024 rows, so a bf16 → f32 widening per call would be
/// wasted work. At bf16 / int8 they are packed for those kernels instead (`Precision`).
struct SiglipEncoderLayer: Sendable {
    let norm1Weight: Tensor, norm1Bias: Tensor  // [C]
    let qkvWeight: WeightMatrix, qkvBias: Tensor  // [3C, C], [3C]: q, k, v stacked for one GEMM
    let outWeight: WeightMatrix, outBias: Tensor  // [C, C], [C]
    let norm2Weight: Tensor, norm2Bias: Tensor  // [C]
    let fc1Weight: WeightMatrix, fc1Bias: Tensor  // [I, C], [I]
    let fc2Weight: WeightMatrix, fc2Bias: Tensor  // [C, I], [C]
}

// MARK: - Model

/// A loaded SigLIP vision tower that runs the blocks NVILA's feature selection needs.
public final class SiglipVisionModel: Sendable {
    public let config: SiglipVisionConfig
    /// Blocks actually run: `hidden_states[selectLayer]` needs `layers + 1 + selectLayer` of them.
    public let runLayers: Int
    let patchWeight: Tensor  // [C, 3·p·p], index c·p² + ky·p + kx (the Conv2d kernel flattened)
    let patchBias: Tensor  // [C]
    let positions: Tensor  // [N, C], N = (imageSize / patchSize)²
    let blocks: [SiglipEncoderLayer]
    let activation: Activation
    /// The arithmetic of the blocks' matrix products (the patch embedding stays fp32).
    public let precision: Precision

    /// - Parameters:
    ///   - weights: tensors under `prefix` + `vision_model.` (HF SiglipVisionModel names)
    ///   - selectLayer: index into `hidden_states` (embeddings, block 1 … block L); negative counts
    ///     from the end like Python (NVILA: −2)
    ///   - precision: the blocks' matrix products (fp32: the exact path)
    public init(config: SiglipVisionConfig, weights: WeightSource, prefix: String = "", selectLayer: Int = -2,
                precision: Precision = .fp32) throws {
        try config.validate()
        let states = config.layers + 1
        let index = selectLayer < 0 ? states + selectLayer : selectLayer
        guard index >= 1, index < states else {
            throw ConfigError(key: "mm_vision_select_layer", value: "\(selectLayer)",
                              reason: "must pick one of the \(config.layers) encoder outputs")
        }
        self.config = config
        runLayers = index
        activation = try config.activation
        self.precision = precision
        func matrix(_ t: Tensor) -> WeightMatrix { WeightMatrix(t).converted(to: precision) }
        let (C, I, p) = (config.hiddenSize, config.intermediateSize, config.patchSize)
        let root = WeightScope(weights).scoped(prefix + "vision_model")
        let embeddings = root.scoped("embeddings")
        patchWeight = try embeddings("patch_embedding.weight", shape: [C, config.channels, p, p])
            .reshaped([C, config.channels * p * p])
        patchBias = try embeddings("patch_embedding.bias", shape: [C])
        let n = config.gridSide * config.gridSide
        positions = try embeddings("position_embedding.weight", shape: [n, C])
        blocks = try (0..<index).map { i in
            let l = root.scoped("encoder").scoped("layers").scoped("\(i)")
            let attn = l.scoped("self_attn"), mlp = l.scoped("mlp")
            let q = try attn("q_proj.weight", shape: [C, C]), k = try attn("k_proj.weight", shape: [C, C])
            let v = try attn("v_proj.weight", shape: [C, C])
            let qb = try attn("q_proj.bias", shape: [C]), kb = try attn("k_proj.bias", shape: [C])
            let vb = try attn("v_proj.bias", shape: [C])
            return SiglipEncoderLayer(
                norm1Weight: try l("layer_norm1.weight", shape: [C]), norm1Bias: try l("layer_norm1.bias", shape: [C]),
                qkvWeight: matrix(Tensor(shape: [3 * C, C], scalars: q.scalars + k.scalars + v.scalars)),
                qkvBias: Tensor(shape: [3 * C], scalars: qb.scalars + kb.scalars + vb.scalars),
                outWeight: matrix(try attn("out_proj.weight", shape: [C, C])), outBias: try attn("out_proj.bias", shape: [C]),
                norm2Weight: try l("layer_norm2.weight", shape: [C]), norm2Bias: try l("layer_norm2.bias", shape: [C]),
                fc1Weight: matrix(try mlp("fc1.weight", shape: [I, C])), fc1Bias: try mlp("fc1.bias", shape: [I]),
                fc2Weight: matrix(try mlp("fc2.weight", shape: [C, I])), fc2Bias: try mlp("fc2.bias", shape: [C]))
        }
    }

    /// Loads a `vision_tower/` folder: `config.json` and its safetensors.
    public static func load(directory: String, selectLayer: Int = -2, precision: Precision = .fp32) throws -> SiglipVisionModel {
        let config = try decodeConfig(SiglipVisionConfig.self, (directory as NSString).appendingPathComponent("config.json"))
        return try SiglipVisionModel(config: config, weights: try WeightStore(directory: directory), selectLayer: selectLayer,
                                     precision: precision)
    }

    /// FLOPs of one forward pass: 2 per weight per patch (patch embedding, q/k/v/out, fc1/fc2)
    /// plus attention (QKᵀ and PV: 2 · 2 · N² · C per block). Norms and activations are not counted.
    public var forwardFLOPs: Double {
        let (N, C, I) = (Double(config.gridSide * config.gridSide), Double(config.hiddenSize), Double(config.intermediateSize))
        let patch = 2 * N * Double(config.channels * config.patchSize * config.patchSize) * C
        let block = 2 * N * (4 * C * C + 2 * C * I) + 4 * N * N * C
        return patch + Double(runLayers) * block
    }

    /// Names of the tensors this tower does not use (blocks past the selected one, the
    /// post-LayerNorm, a pooling head), so a loader can tell them from unexpected left-overs.
    public func unusedTensorPrefixes(prefix: String = "") -> [String] {
        let root = prefix + "vision_model."
        return (runLayers..<config.layers).map { "\(root)encoder.layers.\($0)." } + ["\(root)post_layernorm.", "\(root)head."]
    }

    /// Features of one image.
    /// - Parameter pixels: `[3, S, S]` normalised pixels, S = `imageSize`
    /// - Returns: `[N, C]`, N = (S / patch)² patches in row-major order
    public func callAsFunction(_ pixels: Tensor) -> Tensor {
        var hidden = embed(pixels)
        for block in blocks { hidden = encode(hidden, block) }
        return hidden
    }

    /// Patch embedding plus positions. - Parameter pixels: `[3, S, S]`. - Returns: `[N, C]`
    func embed(_ pixels: Tensor) -> Tensor {
        let (S, p, side) = (config.imageSize, config.patchSize, config.gridSide)
        precondition(pixels.shape == [config.channels, S, S], "SigLIP: pixels \(pixels.shape), expected [3, \(S), \(S)]")
        let K = config.channels * p * p
        // im2col: row n = patch (row n / side, col n % side), column c·p² + ky·p + kx.
        var patches = Tensor(uninitialized: [side * side, K])
        pixels.scalars.withUnsafeBufferPointer { src in
            patches.scalars.withUnsafeMutableBufferPointer { dst in
                let (src, dst) = (src, dst)
                Numerics.parallelFor(side * side, costPerItem: K) { range in
                    for n in range {
                        let (py, px) = (n / side, n % side)
                        var o = n * K
                        for c in 0..<3 {
                            for ky in 0..<p {
                                let row = (c * S + py * p + ky) * S + px * p
                                for kx in 0..<p {
                                    dst[o] = src[row + kx]
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        var hidden = linear(patches, weight: patchWeight, bias: patchBias)
        addInPlace(&hidden, positions)
        return hidden
    }

    /// One pre-LN encoder block. - Parameter x: `[N, C]`. - Returns: `[N, C]`
    func encode(_ x: Tensor, _ block: SiglipEncoderLayer) -> Tensor {
        let (N, C, heads, d) = (x.shape[0], config.hiddenSize, config.heads, config.headDim)
        let eps = config.layerNormEps
        let normed = layerNorm(x, weight: block.norm1Weight, bias: block.norm1Bias, eps: eps)
        let qkv = linear(normed, weight: block.qkvWeight, bias: block.qkvBias)  // [N, 3C]
        let (q, k, v) = splitColumns3(qkv, width: C)
        let context = k.scalars.withUnsafeBufferPointer { kp in
            v.scalars.withUnsafeBufferPointer { vp in
                attention(q: q, keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: N,
                          heads: heads, kvHeads: heads, headDim: d, causal: false)
            }
        }
        var hidden = x
        addInPlace(&hidden, linear(context, weight: block.outWeight, bias: block.outBias))
        let post = layerNorm(hidden, weight: block.norm2Weight, bias: block.norm2Bias, eps: eps)
        var up = linear(post, weight: block.fc1Weight, bias: block.fc1Bias)
        applyInPlace(activation, &up)
        addInPlace(&hidden, linear(up, weight: block.fc2Weight, bias: block.fc2Bias))
        return hidden
    }
}

/// Splits `[N, 3W]` into its three `[N, W]` column blocks.
private func splitColumns3(_ x: Tensor, width w: Int) -> (Tensor, Tensor, Tensor) {
    let n = x.shape[0]
    var parts = (0..<3).map { _ in Tensor(uninitialized: [n, w]) }
    x.scalars.withUnsafeBufferPointer { src in
        for p in 0..<3 {
            parts[p].scalars.withUnsafeMutableBufferPointer { dst in
                for r in 0..<n {
                    (dst.baseAddress! + r * w).update(from: src.baseAddress! + r * 3 * w + p * w, count: w)
                }
            }
        }
    }
    return (parts[0], parts[1], parts[2])
}
