import Testing

@testable import DenseCore

/// Seeded uniform values in [lo, hi) (SplitMix64), so every machine tests the same numbers.
func randomTensor(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float> = -2...2) -> Tensor {
    var random = SplitMix64(seed: seed)
    let values = (0..<shape.reduce(1, *)).map { _ -> Float in
        range.lowerBound + Float(random.next() >> 40) / Float(1 << 24) * (range.upperBound - range.lowerBound)
    }
    return Tensor(shape: shape, scalars: values)
}

/// Normalised mean squared error Σ(a−e)² / Σe² (llama.cpp's test-backend-ops measure).
func nmse(_ a: Tensor, _ e: Tensor) -> Double {
    precondition(a.shape == e.shape, "nmse: \(a.shape) vs \(e.shape)")
    var num = 0.0, den = 0.0
    for (x, y) in zip(a.scalars, e.scalars) {
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return den == 0 ? num : num / den
}

func maxAbsDiff(_ a: Tensor, _ e: Tensor) -> Float {
    zip(a.scalars, e.scalars).map { abs($0 - $1) }.max() ?? 0
}

@Suite(.serialized) struct FastKernelsMatchReference {
    @Test(arguments: [(1, 7, 5), (3, 64, 48), (17, 96, 130), (64, 256, 33)])
    func linear(m: Int, k: Int, n: Int) {
        let x = randomTensor([m, k], seed: 1), w = randomTensor([n, k], seed: 2), b = randomTensor([n], seed: 3)
        #expect(nmse(DenseCore.linear(x, weight: w, bias: b), Reference.linear(x, weight: w, bias: b)) < 1e-10)
        #expect(nmse(DenseCore.linear(x, weight: w), Reference.linear(x, weight: w, bias: nil)) < 1e-10)
    }

    @Test func linearFlattensLeadingDimensions() {
        let x = randomTensor([2, 3, 8], seed: 4), w = randomTensor([5, 8], seed: 5)
        let y = DenseCore.linear(x, weight: w)
        #expect(y.shape == [2, 3, 5])
        #expect(nmse(y.reshaped([6, 5]), Reference.linear(x.reshaped([6, 8]), weight: w, bias: nil)) < 1e-10)
    }

    @Test func matmulMatchesLinearOfTranspose() {
        let a = randomTensor([9, 13], seed: 6), b = randomTensor([13, 4], seed: 7)
        var bt = Tensor(zeros: [4, 13])
        for i in 0..<13 { for j in 0..<4 { bt.scalars[j * 13 + i] = b.scalars[i * 4 + j] } }
        #expect(nmse(matmul(a, b), Reference.linear(a, weight: bt, bias: nil)) < 1e-10)
    }

    @Test(arguments: [(1, 16), (5, 64), (300, 1536)])
    func norms(rows: Int, h: Int) {
        let x = randomTensor([rows, h], seed: 8), w = randomTensor([h], seed: 9), b = randomTensor([h], seed: 10)
        #expect(nmse(rmsNorm(x, weight: w, eps: 1e-6), Reference.rmsNorm(x, weight: w, eps: 1e-6)) < 1e-12)
        #expect(nmse(layerNorm(x, weight: w, bias: b, eps: 1e-5), Reference.layerNorm(x, weight: w, bias: b, eps: 1e-5)) < 1e-12)
    }

    @Test func softmaxIsStableForLargeValues() {
        let x = randomTensor([7, 50], seed: 11, in: -80...80)
        #expect(nmse(softmax(x), Reference.softmax(x)) < 1e-12)
        let huge = Tensor(shape: [1, 3], scalars: [1000, 1000, -.infinity])
        #expect(softmax(huge).scalars == [0.5, 0.5, 0])
    }

    @Test(arguments: [Activation.silu, .geluErf, .geluTanh])
    func activations(a: Activation) {
        let x = randomTensor([40_000], seed: 12, in: -8...8)  // large enough to run in parallel
        #expect(maxAbsDiff(apply(a, x), Reference.activation(a, x)) < 2e-6)
    }

    @Test func swiGLU() {
        var gate = randomTensor([3, 40], seed: 13), up = randomTensor([3, 40], seed: 14)
        let expected = zip(Reference.activation(.silu, gate).scalars, up.scalars).map { $0 * $1 }
        siluMultiply(&gate, up)
        #expect(maxAbsDiff(gate, Tensor(shape: [3, 40], scalars: expected)) < 1e-6)
        up = randomTensor([3, 40], seed: 15)
        var sum = gate
        addInPlace(&sum, up)
        #expect(sum.scalars == zip(gate.scalars, up.scalars).map(+))
    }

    @Test(arguments: [(4, 16, 0), (3, 128, 1000)])
    func rotary(heads: Int, d: Int, start: Int) {
        let tokens = 6
        var x = randomTensor([tokens, heads * d], seed: 16)
        let expected = Reference.rotary(x, heads: heads, positions: Array(start..<start + tokens), theta: 1_000_000)
        let (c, s) = ropeTables(positions: start..<start + tokens, headDim: d, theta: 1_000_000)
        applyRotary(&x, heads: heads, cos: c, sin: s)
        // The fast path forms angles in Float32 as PyTorch does; the reference in Double.
        #expect(maxAbsDiff(x, expected) < 5e-4)
    }

    @Test(arguments: [(1, 1, false), (5, 5, true), (3, 8, true), (6, 6, false), (1, 9, true)])
    func groupedAttention(queries: Int, keys: Int, causal: Bool) {
        let (heads, kvHeads, d) = (4, 2, 8)
        let q = randomTensor([queries, heads * d], seed: 17)
        let k = randomTensor([keys, kvHeads * d], seed: 18), v = randomTensor([keys, kvHeads * d], seed: 19)
        let fast = attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
        let slow = Reference.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
        #expect(nmse(fast, slow) < 1e-10)
        #expect(!fast.scalars.contains { $0.isNaN })
    }

    /// One query (the decode step, `dc_attention_decode`) against the naive twin at Qwen2's d = 128
    /// with GQA, SigLIP's 72, a d with a tail past its 16-lane sums, one key and a long context.
    @Test(arguments: [(1, 12, 2, 128), (33, 4, 4, 72), (9, 2, 1, 21), (1000, 12, 2, 128), (5, 3, 3, 16)])
    func decodeAttention(keys: Int, heads: Int, kvHeads: Int, d: Int) {
        let q = randomTensor([1, heads * d], seed: 26)
        let k = randomTensor([keys, kvHeads * d], seed: 27), v = randomTensor([keys, kvHeads * d], seed: 28)
        let fast = attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: true)
        let slow = Reference.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: true)
        #expect(fast.shape == [1, heads * d])
        #expect(nmse(fast, slow) < 1e-10)
        // Not the unweighted mean of the values: the scores matter.
        if keys > 1 {
            var mean = Tensor(zeros: [1, heads * d])
            for h in 0..<heads {
                for c in 0..<d {
                    mean.scalars[h * d + c] = (0..<keys).map { v.scalars[$0 * kvHeads * d + h / (heads / kvHeads) * d + c] }.reduce(0, +) / Float(keys)
                }
            }
            #expect(nmse(mean, slow) > 1e-4)
        }
    }

    /// The fused kernel at the real head shapes: SigLIP's d = 72 (not a multiple of 32, 16 heads,
    /// keys not a multiple of the 32-key step, queries not of the 8-row block), Qwen2's d = 128 with
    /// GQA and a cached prefix, and rows that see only part of a key block.
    @Test(arguments: [(37, 37, 4, 4, 72, false), (70, 70, 2, 2, 72, false), (19, 53, 6, 2, 128, true),
                      (33, 33, 3, 1, 64, true), (9, 40, 2, 1, 8, true), (2, 100, 2, 2, 256, false)])
    func fusedAttention(queries: Int, keys: Int, heads: Int, kvHeads: Int, d: Int, causal: Bool) {
        let q = randomTensor([queries, heads * d], seed: 23)
        let k = randomTensor([keys, kvHeads * d], seed: 24), v = randomTensor([keys, kvHeads * d], seed: 25)
        let fast = attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
        let slow = Reference.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
        #expect(nmse(fast, slow) < 1e-10)
        // The GEMM path kept for benchmarks (DENSECAP_ATTENTION=gemm) agrees too.
        let gemm = k.scalars.withUnsafeBufferPointer { kp in
            v.scalars.withUnsafeBufferPointer { vp in
                gemmAttention(q: q, keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: keys, heads: heads, kvHeads: kvHeads,
                              headDim: d, causal: causal)
            }
        }
        #expect(nmse(gemm, slow) < 1e-10)
        // Causal: changing the last key must leave every query but the last unchanged.
        if causal, queries > 1 {
            var v2 = v
            for c in 0..<(kvHeads * d) { v2.scalars[(keys - 1) * kvHeads * d + c] += 100 }
            let moved = attention(q: q, k: k, v: v2, heads: heads, kvHeads: kvHeads, headDim: d, causal: true)
            let n = (queries - 1) * heads * d
            #expect(Array(moved.scalars[..<n]) == Array(fast.scalars[..<n]))
            #expect(Array(moved.scalars[n...]) != Array(fast.scalars[n...]))
        }
    }

    @Test func gather() {
        let table = randomTensor([10, 4], seed: 20)
        let g = gatherRows(table, [3, 0, 3])
        #expect(g.shape == [3, 4])
        #expect(Array(g.scalars[0..<4]) == Array(table.scalars[12..<16]))
        #expect(Array(g.scalars[8..<12]) == Array(table.scalars[12..<16]))
    }

    @Test func threadCountDoesNotChangeResults() {
        let x = randomTensor([257, 300], seed: 21), w = randomTensor([300], seed: 22)
        Numerics.setThreads(1)
        let one = rmsNorm(x, weight: w, eps: 1e-6)
        Numerics.setThreads(2)
        let two = rmsNorm(x, weight: w, eps: 1e-6)
        Numerics.setThreads(0)
        #expect(one == two)
        #expect(Numerics.threads == Numerics.availableCores)
    }
}

@Suite struct BFloat16WeightTests {
    /// bf16 bit patterns of seeded values (truncated Float32s).
    func bf16(_ shape: [Int], seed: UInt64) -> [UInt16] {
        randomTensor(shape, seed: seed).scalars.map { UInt16($0.bitPattern >> 16) }
    }

    @Test func widensExactly() {
        let bits: [UInt16] = [0x3F80, 0xBF80, 0x0000, 0x8000, 0x7F80, 0xFF80, 0x0001, 0x4049]
        let w = widenBFloat16(bits)
        #expect(Array(w.prefix(4)) == [1, -1, 0, -0])
        #expect(w[4] == .infinity && w[5] == -.infinity)
        #expect(w[6] == Float(bitPattern: 0x0001_0000))  // subnormal kept
        #expect(w[7] == 3.140625)
    }

    /// The streaming kernel (m ≤ 4) and the widen + GEMM path (m > 4) agree with the naive
    /// product on the widened weights, including columns that are not a multiple of 16 or 32.
    @Test(arguments: [(1, 48, 7), (1, 1536, 300), (3, 37, 50), (4, 70, 9), (9, 64, 33), (6, 40, 900)])  // 900 rows: three widened tiles
    func linearOnBFloat16(m: Int, k: Int, n: Int) {
        let bits = bf16([n, k], seed: 30)
        let weight = WeightMatrix(rows: n, cols: k, storage: .bfloat16(bits))
        let x = randomTensor([m, k], seed: 31), b = randomTensor([n], seed: 32)
        let expected = Reference.linear(x, weight: weight.tensor, bias: b)
        #expect(nmse(linear(x, weight: weight, bias: b), expected) < 1e-11)
        #expect(nmse(linear(x, weight: WeightMatrix(weight.tensor), bias: b), expected) < 1e-11)
    }
}

/// The reduced-precision kernels against their naive twins (`Reference.linearBFloat16`,
/// `Reference.linearInt8`), at shapes with row, column and k tails.
@Suite struct LowPrecisionTests {
    static let shapes = [(1, 48, 7), (1, 1536, 300), (3, 37, 50), (4, 70, 9), (9, 64, 33), (13, 130, 47), (70, 72, 40)]

    @Test(arguments: shapes)
    func bf16MatchesNaiveTwin(m: Int, k: Int, n: Int) {
        let x = randomTensor([m, k], seed: 40), w = randomTensor([n, k], seed: 41), b = randomTensor([n], seed: 42)
        let weight = WeightMatrix(w).converted(to: .bf16)
        var expected = Reference.linearBFloat16(x, weight: w)
        addRowVector(&expected, b)
        let fast = linear(x, weight: weight, bias: b)
        if LowPrecisionKernels.bf16Native {
            // Same rounded operands, fp32 accumulation in another order.
            #expect(nmse(fast, expected) < 1e-11)
        } else {
            // Without native bf16 only the weights are rounded.
            #expect(nmse(fast, Reference.linear(x, weight: Reference.roundedToBFloat16(w), bias: b)) < 1e-11)
        }
        // bf16 is not fp32: the error against the exact product is that of 8-bit mantissas.
        let exact = Reference.linear(x, weight: w, bias: b)
        #expect(nmse(fast, exact) > 1e-9 && nmse(fast, exact) < 1e-4)
    }

    @Test(arguments: shapes)
    func int8MatchesNaiveTwin(m: Int, k: Int, n: Int) {
        let x = randomTensor([m, k], seed: 43), w = randomTensor([n, k], seed: 44)
        let weight = WeightMatrix(w).converted(to: .int8)
        let expected = Reference.linearInt8(x, weight: w)
        let fast = linear(x, weight: weight)
        #expect(nmse(fast, expected) < 1e-12)
        // The stored rows are the naive quantisation exactly.
        let (q, scales) = Reference.quantizeRows(w)
        for r in [0, n / 2, n - 1] {
            let row = weight.quantizedRow(r)!
            #expect(row.values.map(Int.init) == q[r])
            #expect(Double(row.scale) == scales[r])
        }
        let exact = Reference.linear(x, weight: w, bias: nil)
        #expect(nmse(fast, exact) > 1e-8 && nmse(fast, exact) < 1e-3)
    }

    /// Every int8 kernel this CPU runs (AVX-512 VNNI, AVX-VNNI, AVX2, baseline C) gives the naive
    /// integer sums bit for bit, for every row tile (1–4, 8 and their remainders), one and two
    /// panels per tile, column and k tails, and over a part of the panels (as the threads split them).
    @Test(arguments: [(1, 200, 45), (2, 7, 16), (3, 64, 33), (4, 1536, 40), (5, 36, 17), (8, 100, 64), (9, 13, 50), (11, 200, 45), (13, 130, 47)])
    func everyInt8KernelGivesTheNaiveSums(m: Int, k: Int, n: Int) throws {
        let weight = WeightMatrix(randomTensor([n, k], seed: 46)).converted(to: .int8)
        guard case .int8(let q) = weight.storage else { Issue.record("not int8"); return }
        var rng = SplitMix64(seed: UInt64(m * 1000 + k))
        // Activations over the whole range, the extremes included.
        var a = (0..<m * k).map { _ in Int8(Int(rng.next() % 255) - 127) }
        a[0] = 127
        a[a.count - 1] = -127
        let rows = (0..<n).map { weight.quantizedRow($0)!.values }
        var naive = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n { naive[i * n + j] = Int32((0..<k).reduce(0) { $0 + Int(a[i * k + $1]) * Int(rows[j][$1]) }) }
        }
        let kernels = LowPrecisionKernels.Int8Kernel.allCases.filter(\.isSupported)
        #expect(kernels.contains(.c) && kernels.contains(LowPrecisionKernels.cpuInt8Kernel))
        let panels = (n + 15) / 16
        for kernel in kernels {
            #expect(int8Products(a, m: m, weight: weight, quantized: q, kernel: kernel.rawValue) == naive, "\(kernel)")
            // From the second panel on, as the second thread computes: the first panel's columns stay 0.
            guard panels > 1 else { continue }
            let part = int8Products(a, m: m, weight: weight, quantized: q, kernel: kernel.rawValue, panels: 1..<panels)
            for i in 0..<m {
                #expect(part[i * n..<i * n + 16].allSatisfy { $0 == 0 })
                #expect(part[i * n + 16..<(i + 1) * n] == naive[i * n + 16..<(i + 1) * n], "\(kernel) from panel 1")
            }
        }
        // A kernel this CPU lacks falls back to the baseline loop instead of faulting.
        if let missing = LowPrecisionKernels.Int8Kernel.allCases.first(where: { !$0.isSupported }) {
            #expect(int8Products(a, m: m, weight: weight, quantized: q, kernel: missing.rawValue) == naive)
        }
        // The scaled products agree across kernels too (the same integers, scaled the same way).
        let x = randomTensor([m, k], seed: 45)
        func scaled(_ kernel: LowPrecisionKernels.Int8Kernel) -> [Float] {
            var out = [Float](repeating: 0, count: m * n)
            x.scalars.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { linearInt8(xp.baseAddress!, m: m, weight: weight, quantized: q, kernel: kernel.rawValue, out: $0.baseAddress!) }
            }
            return out
        }
        for kernel in kernels { #expect(scaled(kernel) == linear(x, weight: weight).scalars, "\(kernel)") }
    }

    @Test func int8KernelNamesSelect() {
        #expect(LowPrecisionKernels.int8Kernel(forced: nil) == LowPrecisionKernels.cpuInt8Kernel)
        #expect(LowPrecisionKernels.int8Kernel(forced: "no-such-kernel") == LowPrecisionKernels.cpuInt8Kernel)
        #expect(LowPrecisionKernels.int8Kernel(forced: "C") == .c)
        for kernel in LowPrecisionKernels.Int8Kernel.allCases {
            #expect(LowPrecisionKernels.int8Kernel(forced: kernel.name) == (kernel.isSupported ? kernel : LowPrecisionKernels.cpuInt8Kernel))
        }
    }

    @Test func conversionKeepsShapeAndShrinksMemory() {
        let w = randomTensor([40, 96], seed: 47)
        let full = WeightMatrix(w)
        let q = full.converted(to: .int8), b = full.converted(to: .bf16)
        #expect(q.shape == [40, 96] && b.shape == [40, 96])
        #expect(q.byteCount < full.byteCount / 3)
        #expect(b.byteCount <= full.byteCount / 2 + 16 * 96 * 2)
        #expect(full.converted(to: .fp32).tensor == w)
        // Dequantised int8 is within half a step of every weight.
        let back = q.tensor
        for r in 0..<40 {
            let step = (0..<96).map { abs(w.scalars[r * 96 + $0]) }.max()! / 127
            for c in 0..<96 { #expect(abs(back.scalars[r * 96 + c] - w.scalars[r * 96 + c]) <= step / 2 * 1.0001) }
        }
    }
}
