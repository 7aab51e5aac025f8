import DenseCore
import Foundation
import TemporalCompress

// NVILA's vision → language projectors: a space-to-channel block, then an MLP. Port of
// NVlabs/VILA llava/model/multimodal_projector/base_projector.py at b760c34 (nvila-spec §4).
// The MLP's GELU is the exact erf form (nn.GELU()) and its LayerNorms use PyTorch's default
// eps 1e-5 — not the tower's tanh GELU and 1e-6.

// MARK: - Configuration

/// The projector families released NVILA checkpoints use (`mm_projector_type`).
public enum ProjectorType: String, Sendable, CaseIterable {
    /// 2×2 space-to-channel → LN(4C) → Linear(4C→H) → GELU → Linear(H→H) (NVILA, NVILA-15B).
    case mlpDownsample = "mlp_downsample"
    /// Same math as `mlpDownsample` (NVILA-8B-Video).
    case mlpDownsample2x2Fix = "mlp_downsample_2x2_fix"
    /// 3×3 space-to-channel → LN(9C) → Linear(9C→3C) → GELU → LN(3C) → Linear(3C→H) → GELU →
    /// Linear(H→H) (NVILA-Lite).
    case mlpDownsample3x3Fix = "mlp_downsample_3x3_fix"

    /// The space-to-channel factor k (tokens are merged k×k).
    public var factor: Int { self == .mlpDownsample3x3Fix ? 3 : 2 }

    /// Parses `mm_projector_type`, naming the key when the type is not supported.
    public init(configValue: String) throws {
        guard let type = ProjectorType(rawValue: configValue) else {
            throw ConfigError(key: "mm_projector_type", value: configValue,
                              reason: "supported: \(ProjectorType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = type
    }
}

// MARK: - Model

/// A loaded projector: `[s², C]` tower features (a s×s grid) → `[⌈s/k⌉², H]` LLM embeddings.
public final class MultimodalProjector: Sendable {
    public let type: ProjectorType
    /// Channels in (`mm_hidden_size`: 3 × 1152 for Dynamic-S2 models, 1152 otherwise).
    public let inputChannels: Int
    /// LLM hidden size out.
    public let outputChannels: Int
    static let layerNormEps: Float = 1e-5

    struct Norm: Sendable { let weight: Tensor, bias: Tensor }
    struct Dense: Sendable { let weight: WeightMatrix, bias: Tensor }
    /// The sequence after the space-to-channel block: LayerNorms and Linears in order, a GELU
    /// after every Linear but the last.
    enum Step: Sendable { case norm(Norm), dense(Dense), gelu }
    let steps: [Step]

    /// - Parameter weights: tensors under `prefix` + `layers.{i}.` (the `nn.Sequential` indices
    ///   of the reference: index 0 is the parameterless space-to-channel block, GELUs have none).
    public init(type: ProjectorType, inputChannels C: Int, outputChannels H: Int, weights: WeightSource, prefix: String = "",
                precision: Precision = .fp32) throws {
        self.type = type
        inputChannels = C
        outputChannels = H
        let layers = WeightScope(weights).scoped(prefix + "layers")
        func norm(_ i: Int, _ width: Int) throws -> Step {
            .norm(Norm(weight: try layers("\(i).weight", shape: [width]), bias: try layers("\(i).bias", shape: [width])))
        }
        func dense(_ i: Int, _ out: Int, _ inp: Int) throws -> Step {
            .dense(Dense(weight: try layers.matrix("\(i).weight", shape: [out, inp]).converted(to: precision), bias: try layers("\(i).bias", shape: [out])))
        }
        switch type {
        case .mlpDownsample, .mlpDownsample2x2Fix:
            steps = [try norm(1, 4 * C), try dense(2, H, 4 * C), .gelu, try dense(4, H, H)]
        case .mlpDownsample3x3Fix:
            steps = [try norm(1, 9 * C), try dense(2, 3 * C, 9 * C), .gelu, try norm(4, 3 * C), try dense(5, H, 3 * C), .gelu,
                     try dense(7, H, H)]
        }
    }

    /// Tokens out for a grid of `side × side` features: ⌈side / k⌉².
    public func tokenCount(gridSide side: Int) -> Int {
        let k = type.factor
        return ((side + k - 1) / k) * ((side + k - 1) / k)
    }

    /// - Parameter features: `[s², C]`, a s×s grid in row-major order
    /// - Returns: `[⌈s/k⌉², H]`, the merged grid in row-major order
    public func callAsFunction(_ features: Tensor) -> Tensor {
        precondition(features.rank == 2 && features.shape[1] == inputChannels,
                     "projector: features \(features.shape), expected [N, \(inputChannels)]")
        var x = spaceToChannel(features, factor: type.factor)
        for step in steps {
            switch step {
            case .norm(let n): x = layerNorm(x, weight: n.weight, bias: n.bias, eps: Self.layerNormEps)
            case .dense(let d): x = linear(x, weight: d.weight, bias: d.bias)
            case .gelu: applyInPlace(.geluErf, &x)
            }
        }
        return x
    }
}
