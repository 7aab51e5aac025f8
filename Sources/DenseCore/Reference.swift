import Foundation

/// Naive kernels: plain loops in Double, written for obviousness, never for speed. Tests hold each
/// fast kernel in `Tensor+Ops.swift` and `Attention.swift` against its twin here.
public enum Reference {
    /// `[m, k] · [n, k]ᵀ + b → [m, n]`
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
        var out = Tensor(zeros: [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(bias?.scalars[j] ?? 0)
                for p in 0..<k { s += Double(x.scalars[i * k + p]) * Double(weight.scalars[j * k + p]) }
                out.scalars[i * n + j] = Float(s)
            }
        }
        return out
    }

    /// bf16 products by definition: x and W rounded to bf16 (nearest even), summed in Double.
    /// - Parameters: x `[m, k]`, weight `[n, k]`. - Returns: `[m, n]`
    public static func linearBFloat16(_ x: Tensor, weight: Tensor) -> Tensor {
        linear(roundedToBFloat16(x), weight: roundedToBFloat16(weight), bias: nil)
    }

    /// `x` rounded to bf16 and back (round to nearest, ties to even).
    public static func roundedToBFloat16(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { v in
            let bits = v.bitPattern
            let rounded = (UInt64(bits) + 0x7FFF + UInt64((bits >> 16) & 1)) >> 16
            return Float(bitPattern: UInt32(truncatingIfNeeded: rounded) << 16)
        })
    }

    /// Symmetric int8 quantisation of each row: scale = max|row| / 127, q = round-half-even(v / scale).
    public static func quantizeRows(_ x: Tensor) -> (q: [[Int]], scales: [Double]) {
        let k = x.shape.last!
        var qs: [[Int]] = [], scales: [Double] = []
        for r in 0..<(x.count / k) {
            let row = x.scalars[r * k..<(r + 1) * k]
            let peak = row.map { abs($0) }.max() ?? 0
            let inv: Float = peak > 0 ? 127 / peak : 0  // in Float32, as the kernel forms it
            qs.append(row.map { Int(($0 * inv).rounded(.toNearestOrEven)) })
            scales.append(Double(peak / 127))
        }
        return (qs, scales)
    }

    /// The int8 scheme by definition: both operands quantised per row, integer sums, scaled.
    /// - Parameters: x `[m, k]`, weight `[n, k]` (Float32; quantised here). - Returns: `[m, n]`
    public static func linearInt8(_ x: Tensor, weight: Tensor) -> Tensor {
        let (a, sa) = quantizeRows(x), (w, sw) = quantizeRows(weight)
        var out = Tensor(zeros: [a.count, w.count])
        for i in a.indices {
            for j in w.indices {
                let dot = zip(a[i], w[j]).reduce(0) { $0 + $1.0 * $1.1 }
                out.scalars[i * w.count + j] = Float(Double(dot) * sa[i] * sw[j])
            }
        }
        return out
    }

    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
        rows(x) { row in
            let ms = row.reduce(0) { $0 + $1 * $1 } / Double(row.count)
            return row.indices.map { row[$0] / (ms + Double(eps)).squareRoot() * Double(weight.scalars[$0]) }
        }
    }

    public static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        rows(x) { row in
            let mean = row.reduce(0, +) / Double(row.count)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(row.count)
            return row.indices.map {
                (row[$0] - mean) / (variance + Double(eps)).squareRoot() * Double(weight.scalars[$0]) + Double(bias.scalars[$0])
            }
        }
    }

    public static func softmax(_ x: Tensor) -> Tensor {
        rows(x) { row in
            let peak = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - peak) }
            let sum = e.reduce(0, +)
            return e.map { $0 / sum }
        }
    }

    public static func activation(_ a: Activation, _ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { v in
            let x = Double(v)
            switch a {
            case .silu: return Float(x / (1 + Foundation.exp(-x)))
            case .geluErf: return Float(0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot())))
            case .geluTanh: return Float(0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))))
            }
        })
    }

    /// Rotate-half RoPE on `[tokens, heads × d]` at positions `positions`, tables in Double.
    public static func rotary(_ x: Tensor, heads: Int, positions: [Int], theta: Double) -> Tensor {
        let d = x.shape[1] / heads
        var out = x
        for (t, p) in positions.enumerated() {
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    let angle = Double(p) * Foundation.pow(theta, -Double(2 * i) / Double(d))
                    let base = t * heads * d + h * d
                    let a = Double(x.scalars[base + i]), b = Double(x.scalars[base + i + d / 2])
                    out.scalars[base + i] = Float(a * Foundation.cos(angle) - b * Foundation.sin(angle))
                    out.scalars[base + i + d / 2] = Float(b * Foundation.cos(angle) + a * Foundation.sin(angle))
                }
            }
        }
        return out
    }

    /// Attention by definition: for each query and head, softmax over visible keys of q·k/√d, then Σ p·v.
    public static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, headDim d: Int, causal: Bool) -> Tensor {
        let (L, T) = (q.shape[0], k.shape[0])
        var out = Tensor(zeros: q.shape)
        for i in 0..<L {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let visible = causal ? T - L + i + 1 : T
                var scores = (0..<visible).map { j in
                    (0..<d).reduce(0.0) { $0 + Double(q.scalars[i * heads * d + h * d + $1]) * Double(k.scalars[j * kvHeads * d + g * d + $1]) }
                        / Double(d).squareRoot()
                }
                let peak = scores.max()!
                scores = scores.map { Foundation.exp($0 - peak) }
                let sum = scores.reduce(0, +)
                for c in 0..<d {
                    var acc = 0.0
                    for j in 0..<visible { acc += scores[j] / sum * Double(v.scalars[j * kvHeads * d + g * d + c]) }
                    out.scalars[i * heads * d + h * d + c] = Float(acc)
                }
            }
        }
        return out
    }

    private static func rows(_ x: Tensor, _ f: ([Double]) -> [Double]) -> Tensor {
        let n = x.shape.last!
        var out = x
        for r in 0..<(x.count / n) {
            let row = f(x.scalars[r * n..<(r + 1) * n].map(Double.init))
            for i in 0..<n { out.scalars[r * n + i] = Float(row[i]) }
        }
        return out
    }
}
