import DenseCore
import Testing

@testable import Engine

/// Each fast kernel against PyTorch's output for the same inputs (ops_golden.safetensors, written
/// by tools/fixtures/gen_engine_fixtures.py). Tolerance: 1e-5 of the largest expected value unless
/// the note says why it is looser.
@Suite(.serialized) struct OpsGoldenTests {
    let file: SafetensorsFile

    init() throws {
        file = try SafetensorsFile(path: try fixture("ops_golden.safetensors"))
    }

    func t(_ name: String) throws -> Tensor { try file.tensor(name) }

    /// `[rows, heads, d]` as the engine's `[rows, heads × d]`.
    func flat(_ name: String) throws -> Tensor {
        let x = try t(name)
        return x.reshaped([x.shape[0], x.count / x.shape[0]])
    }

    @Test func normsAndLinear() throws {
        expectClose(rmsNorm(try t("rmsnorm.x"), weight: try t("rmsnorm.weight"), eps: 1e-6), try t("rmsnorm.out"), relative: 1e-5, "rmsnorm")
        for eps: Float in [1e-6, 1e-5] {
            let out = layerNorm(try t("layernorm.x"), weight: try t("layernorm.weight"), bias: try t("layernorm.bias"), eps: eps)
            expectClose(out, try t(eps == 1e-6 ? "layernorm.out.eps1e-6" : "layernorm.out.eps1e-5"), relative: 1e-5, "layernorm \(eps)")
        }
        expectClose(linear(try t("linear.x"), weight: try t("linear.weight"), bias: try t("linear.bias")), try t("linear.out"), relative: 1e-5, "linear")
    }

    @Test func softmaxAndActivations() throws {
        expectClose(softmax(try t("softmax.x")), try t("softmax.out"), relative: 1e-6, "softmax")
        let x = try t("activation.x")
        expectClose(apply(.silu, x), try t("silu.out"), relative: 1e-6, "silu")
        expectClose(apply(.geluErf, x), try t("gelu_erf.out"), relative: 1e-6, "gelu erf")
        expectClose(apply(.geluTanh, x), try t("gelu_tanh.out"), relative: 1e-6, "gelu tanh")
    }

    @Test(arguments: [0, 7, 4000])
    func rotary(start: Int) throws {
        let (c, s) = ropeTables(positions: start..<start + 9, headDim: 16, theta: 1_000_000)
        expectClose(c, try t("rope.cos.pos\(start)"), relative: 1e-6, "cos")
        expectClose(s, try t("rope.sin.pos\(start)"), relative: 1e-6, "sin")
        var q = try flat("rope.q"), k = try flat("rope.k")
        applyRotary(&q, heads: 4, cos: c, sin: s)
        applyRotary(&k, heads: 2, cos: c, sin: s)
        expectClose(q, try flat("rope.q_out.pos\(start)"), relative: 1e-5, "q")
        expectClose(k, try flat("rope.k_out.pos\(start)"), relative: 1e-5, "k")
    }

    @Test func causalGroupedAttention() throws {
        let q = try flat("attention.q"), k = try flat("attention.k"), v = try flat("attention.v")
        let out = try flat("attention.out")
        expectClose(attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, headDim: 16, causal: true), out, relative: 1e-5, "attention")
        // The KV-cache case: the last 4 queries against all 11 keys give the last 4 rows.
        let tail = Tensor(shape: [4, 64], scalars: Array(q.scalars[(7 * 64)...]))
        let expected = Tensor(shape: [4, 64], scalars: Array(out.scalars[(7 * 64)...]))
        expectClose(attention(q: tail, k: k, v: v, heads: 4, kvHeads: 2, headDim: 16, causal: true), expected, relative: 1e-5, "cached attention")
    }

    @Test func widening() throws {
        #expect(try t("bf16.x").scalars.map(\.bitPattern) == (try t("bf16.as_f32")).scalars.map(\.bitPattern))
        let f16 = try t("f16.x").scalars, expected = try t("f16.as_f32").scalars
        for (a, e) in zip(f16, expected) { #expect(a.isNaN ? e.isNaN : a.bitPattern == e.bitPattern) }
    }
}
