import CKernels
import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

// Fast kernels: GEMM through OpenBLAS, the rest as tight loops over raw buffers, split over
// `Numerics.threads`. Each has a naive twin in `Reference` that the tests hold it against.

// MARK: - Matrix products

/// `y = x · Wᵀ + b`, the PyTorch `Linear` with its checkpoint layout.
/// - Parameters:
///   - x: `[m, k]` (or any `[…, k]`; leading dimensions are flattened)
///   - weight: `[n, k]`
///   - bias: `[n]`
/// - Returns: `[…, n]`
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    let k = x.shape.last ?? 0
    precondition(weight.rank == 2 && weight.shape[1] == k, "linear: x \(x.shape) vs weight \(weight.shape)")
    let n = weight.shape[0]
    let m = k == 0 ? 0 : x.count / k
    var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])
    if m > 0 && n > 0 {
        x.scalars.withUnsafeBufferPointer { xp in
            weight.scalars.withUnsafeBufferPointer { wp in
                out.scalars.withUnsafeMutableBufferPointer { op in
                    sgemm(
                        transposeB: true, m: m, n: n, k: k, a: xp.baseAddress!, lda: k, b: wp.baseAddress!, ldb: k,
                        c: op.baseAddress!, ldc: n)
                }
            }
        }
    }
    if let bias {
        precondition(bias.shape == [n], "linear: bias \(bias.shape) for \(n) outputs")
        addRowVector(&out, bias)
    }
    return out
}

/// `C = A · B` (or `A · Bᵀ`) on raw row-major buffers with leading dimensions, so attention can
/// multiply one head's slice of a `[tokens, heads × headDim]` matrix in place. `C` is overwritten.
@inlinable
public func sgemm(
    transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// `A · B` for `[m, k] · [k, n] → [m, n]`.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[0], "matmul: \(a.shape) · \(b.shape)")
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
    var out = Tensor(uninitialized: [m, n])
    if m > 0 && n > 0 && k > 0 {
        a.scalars.withUnsafeBufferPointer { ap in
            b.scalars.withUnsafeBufferPointer { bp in
                out.scalars.withUnsafeMutableBufferPointer { op in
                    sgemm(transposeB: false, m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                          c: op.baseAddress!, ldc: n)
                }
            }
        }
    }
    return out
}

// MARK: - Normalisation

/// RMSNorm over the last dimension, Qwen2's form: `x · rsqrt(mean(x²) + eps) · weight`, in Float32.
/// - Parameters: x `[…, h]`, weight `[h]`. - Returns: `[…, h]`
public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
    let h = x.shape.last ?? 0
    precondition(weight.shape == [h], "rmsNorm: x \(x.shape) vs weight \(weight.shape)")
    var out = x
    let rows = h == 0 ? 0 : x.count / h
    weight.scalars.withUnsafeBufferPointer { w in
        out.scalars.withUnsafeMutableBufferPointer { o in
            let o = o
            Numerics.parallelFor(rows, costPerItem: 3 * h) { range in
                for r in range {
                    let row = o.baseAddress! + r * h
                    var sum: Float = 0
                    for i in 0..<h { sum += row[i] * row[i] }
                    let scale = 1 / (sum / Float(h) + eps).squareRoot()
                    for i in 0..<h { row[i] = w[i] * (row[i] * scale) }
                }
            }
        }
    }
    return out
}

/// LayerNorm over the last dimension with a biased variance, as PyTorch computes it.
/// - Parameters: x `[…, h]`, weight and bias `[h]`. - Returns: `[…, h]`
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let h = x.shape.last ?? 0
    precondition(weight.shape == [h] && bias.shape == [h], "layerNorm: x \(x.shape), weight \(weight.shape), bias \(bias.shape)")
    var out = x
    let rows = h == 0 ? 0 : x.count / h
    weight.scalars.withUnsafeBufferPointer { w in
        bias.scalars.withUnsafeBufferPointer { b in
            out.scalars.withUnsafeMutableBufferPointer { o in
                let o = o
                Numerics.parallelFor(rows, costPerItem: 4 * h) { range in
                    for r in range {
                        let row = o.baseAddress! + r * h
                        var mean: Float = 0
                        for i in 0..<h { mean += row[i] }
                        mean /= Float(h)
                        var variance: Float = 0
                        for i in 0..<h {
                            let d = row[i] - mean
                            variance += d * d
                        }
                        let scale = 1 / (variance / Float(h) + eps).squareRoot()
                        for i in 0..<h { row[i] = (row[i] - mean) * scale * w[i] + b[i] }
                    }
                }
            }
        }
    }
    return out
}

/// Row-wise argmax (first maximum, as torch.argmax). - Parameter x: `[R, V]`
public func argmaxRows(_ x: Tensor) -> [Int] {
    let (R, V) = (x.shape[0], x.shape[1])
    return x.scalars.withUnsafeBufferPointer { p in
        (0..<R).map { r in
            var best = 0
            var value = p[r * V]
            for j in 1..<V where p[r * V + j] > value {
                value = p[r * V + j]
                best = j
            }
            return best
        }
    }
}

// MARK: - Softmax and activations

/// Softmax over the last dimension (max-subtracted). - Returns: the shape of `x`.
public func softmax(_ x: Tensor) -> Tensor {
    var out = x
    let n = x.shape.last ?? 0
    let rows = n == 0 ? 0 : x.count / n
    out.scalars.withUnsafeMutableBufferPointer { o in
        let o = o
        Numerics.parallelFor(rows, costPerItem: 4 * n) { range in
            for r in range { softmaxInPlace(o.baseAddress! + r * n, count: n) }
        }
    }
    return out
}

/// Softmax of `count` values in place (max-subtracted; every value −∞ gives the uniform
/// distribution rather than NaN). The exponentials are a vectorised polynomial (`dc_exp`, about
/// 1 ulp) in C; `Reference.softmax` is the libm twin.
public func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, count n: Int) {
    guard n > 0 else { return }
    dc_softmax(row, n)
}

/// An elementwise activation.
public enum Activation: Sendable {
    /// `x · σ(x)` (Qwen2's MLP).
    case silu
    /// `½x(1 + erf(x/√2))` (PyTorch's default GELU; NVILA's projector).
    case geluErf
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (SigLIP's `gelu_pytorch_tanh`).
    case geluTanh

    @inlinable
    public func callAsFunction(_ x: Float) -> Float {
        switch self {
        case .silu: return x / (1 + expf(-x))
        case .geluErf: return 0.5 * x * (1 + erff(x * 0.707_106_781_186_547_5))
        case .geluTanh:
            return 0.5 * x * (1 + tanhf(0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)))
        }
    }
}

/// Applies `activation` to every element. - Returns: the shape of `x`.
public func apply(_ activation: Activation, _ x: Tensor) -> Tensor {
    var out = x
    applyInPlace(activation, &out)
    return out
}

/// Applies `activation` to every element in place. The tanh GELU (SigLIP's, run on every MLP
/// activation of every tile) goes through the vectorised C kernel; the others through libm.
public func applyInPlace(_ activation: Activation, _ x: inout Tensor) {
    x.scalars.withUnsafeMutableBufferPointer { o in
        let o = o
        Numerics.parallelFor(o.count, costPerItem: 20) { range in
            if activation == .geluTanh {
                dc_gelu_tanh(o.baseAddress! + range.lowerBound, range.count)
            } else {
                for i in range { o[i] = activation(o[i]) }
            }
        }
    }
}

/// `silu(gate) · up`, Qwen2's SwiGLU, written into `gate`. Shapes must match. Vectorised in C
/// (`dc_silu_mul`); `Activation.silu` is the scalar twin.
public func siluMultiply(_ gate: inout Tensor, _ up: Tensor) {
    precondition(gate.shape == up.shape, "siluMultiply: \(gate.shape) vs \(up.shape)")
    up.scalars.withUnsafeBufferPointer { u in
        gate.scalars.withUnsafeMutableBufferPointer { g in
            let g = g
            Numerics.parallelFor(g.count, costPerItem: 8) { range in
                dc_silu_mul(g.baseAddress! + range.lowerBound, u.baseAddress! + range.lowerBound, range.count)
            }
        }
    }
}

// MARK: - Elementwise arithmetic and gathering

/// `a += b` (same shapes): the residual connection.
public func addInPlace(_ a: inout Tensor, _ b: Tensor) {
    precondition(a.shape == b.shape, "addInPlace: \(a.shape) vs \(b.shape)")
    b.scalars.withUnsafeBufferPointer { bp in
        a.scalars.withUnsafeMutableBufferPointer { ap in
            let ap = ap
            Numerics.parallelFor(ap.count) { range in
                for i in range { ap[i] += bp[i] }
            }
        }
    }
}

/// Adds `v` `[n]` to every row of `x` `[…, n]`.
public func addRowVector(_ x: inout Tensor, _ v: Tensor) {
    let n = v.count
    precondition(x.shape.last == n, "addRowVector: \(x.shape) + \(v.shape)")
    let rows = n == 0 ? 0 : x.count / n
    v.scalars.withUnsafeBufferPointer { vp in
        x.scalars.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            Numerics.parallelFor(rows, costPerItem: n) { range in
                for r in range {
                    let row = xp.baseAddress! + r * n
                    for i in 0..<n { row[i] += vp[i] }
                }
            }
        }
    }
}

/// Rows `ids` of `table` `[rows, h]` → `[ids.count, h]`.
/// - Precondition: every id is a valid row (callers check user-supplied ids first).
public func gatherRows(_ table: Tensor, _ ids: [Int]) -> Tensor {
    precondition(table.rank == 2, "gatherRows: table \(table.shape)")
    let (rows, h) = (table.shape[0], table.shape[1])
    var out = Tensor(zeros: [ids.count, h])
    table.scalars.withUnsafeBufferPointer { t in
        out.scalars.withUnsafeMutableBufferPointer { o in
            for (r, id) in ids.enumerated() {
                precondition(id >= 0 && id < rows, "gatherRows: id \(id) outside \(rows) rows")
                (o.baseAddress! + r * h).update(from: t.baseAddress! + id * h, count: h)
            }
        }
    }
    return out
}

// MARK: - Rotary position embedding

/// Rotary embedding tables for positions `positions`, head dimension `d`, base `theta`
/// (HF `Qwen2RotaryEmbedding`, default rope type): `inv_freq_i = θ^(−2i/d)` in Float32,
/// `freqs = p · inv_freq`, `cos/sin` of `cat(freqs, freqs)`.
/// - Returns: `(cos, sin)`, each `[positions.count, d]`.
public func ropeTables(positions: Range<Int>, headDim d: Int, theta: Float) -> (cos: Tensor, sin: Tensor) {
    precondition(d % 2 == 0, "rope: head dimension \(d) must be even")
    let half = d / 2
    let invFreq: [Float] = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(d)) }
    var cosT = Tensor(zeros: [positions.count, d])
    var sinT = Tensor(zeros: [positions.count, d])
    for (r, p) in positions.enumerated() {
        for i in 0..<half {
            let angle = Float(p) * invFreq[i]  // Float32 product, as PyTorch forms it
            let c = Float(cos(Double(angle))), s = Float(sin(Double(angle)))
            cosT.scalars[r * d + i] = c
            cosT.scalars[r * d + i + half] = c
            sinT.scalars[r * d + i] = s
            sinT.scalars[r * d + i + half] = s
        }
    }
    return (cosT, sinT)
}

/// Rotates every head of `x` `[tokens, heads × d]` in place with rotate-half:
/// `x·cos + rotate_half(x)·sin`, where `rotate_half([a, b]) = [−b, a]`.
/// - Parameters: cos, sin `[tokens, d]` from `ropeTables`.
public func applyRotary(_ x: inout Tensor, heads: Int, cos cosT: Tensor, sin sinT: Tensor) {
    let tokens = x.shape[0]
    let d = cosT.shape[1]
    precondition(x.rank == 2 && x.shape[1] == heads * d && cosT.shape[0] == tokens && sinT.shape == cosT.shape,
        "applyRotary: x \(x.shape), heads \(heads), tables \(cosT.shape)")
    let half = d / 2
    cosT.scalars.withUnsafeBufferPointer { cp in
        sinT.scalars.withUnsafeBufferPointer { sp in
            x.scalars.withUnsafeMutableBufferPointer { xp in
                let xp = xp
                Numerics.parallelFor(tokens, costPerItem: heads * d * 3) { range in
                    for t in range {
                        let c = cp.baseAddress! + t * d
                        let s = sp.baseAddress! + t * d
                        for h in 0..<heads {
                            let v = xp.baseAddress! + t * heads * d + h * d
                            for i in 0..<half {
                                let a = v[i], b = v[i + half]
                                v[i] = a * c[i] - b * s[i]
                                v[i + half] = b * c[i + half] + a * s[i + half]
                            }
                        }
                    }
                }
            }
        }
    }
}
