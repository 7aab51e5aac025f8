import DenseCore

/// Where a model's tensors come from, by full dotted checkpoint name
/// (`model.layers.3.self_attn.q_proj.weight`). `WeightStore` reads safetensors checkpoints; tests
/// may supply fixed tables.
public protocol WeightSource: Sendable {
    /// The tensor called `name`, widened to Float32, after checking that it has exactly `shape`
    /// (outermost-first, as PyTorch prints it: a linear weight is `[out, in]`).
    /// - Throws: `WeightError.missing`, `.shapeMismatch` or `.unsupportedDType`, naming the tensor.
    func tensor(_ name: String, shape: [Int]) throws -> Tensor
    /// Whether a tensor called `name` exists (whatever its dtype).
    func contains(_ name: String) -> Bool
    /// The stored shape of `name`, or nil when absent; for dimensions a config does not state
    /// (the vocabulary size is read from `embed_tokens`).
    func shape(of name: String) -> [Int]?
    /// The 2-D tensor `name` in the precision it is stored in (bf16 stays bf16; F16 widens),
    /// after checking its shape — for weights that linear layers multiply by.
    func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix
}

extension WeightSource {
    /// Default: read as Float32 (sources without a narrower storage).
    public func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        WeightMatrix(try tensor(name, shape: shape))
    }
}
