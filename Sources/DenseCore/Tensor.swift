/// A dense, row-major Float32 tensor. Shapes are outermost-first, exactly as PyTorch prints them:
/// a linear layer's weight is `[out, in]`, a sequence of hidden states `[tokens, hidden]`.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    /// `shape.reduce(1, *)` values, row-major. Mutate in place; never resize.
    public var scalars: [Float]

    /// - Precondition: `scalars.count` equals the product of `shape` (a programmer error otherwise).
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == scalars.count,
            "tensor of shape \(shape) needs \(shape.reduce(1, *)) values, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// A tensor whose values are unspecified, for outputs a kernel overwrites completely
    /// (a GEMM with β = 0): skips zero-filling megabytes that are written again at once.
    public init(uninitialized shape: [Int]) {
        let count = shape.reduce(1, *)
        self.init(shape: shape, scalars: [Float](unsafeUninitializedCapacity: count) { _, n in n = count })
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }
}
