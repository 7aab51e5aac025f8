import DenseCore
import Foundation
import Testing

@testable import Engine

/// Measured accuracy of each `--precision` on the tiny NVILA-Lite checkpoint, against the fp32
/// reference and against the reference run in the same precision (`tools/fixtures/
/// gen_precision_fixtures.py`: PyTorch in bf16, and PyTorch emulations of densecap's bf16 and
/// int8 schemes). The tolerances are stated per measure below; README "Precision and speed" lists
/// the measured values.
@Suite(.serialized) struct PrecisionAccuracyTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    struct Prompt: Decodable {
        let ids: [Int]
        let greedy_fp32: [Int], greedy_bf16_torch: [Int], greedy_bf16_emul: [Int], greedy_int8_emul: [Int]
    }
    struct Cases: Decodable { let prompts: [Prompt] }

    /// A checkpoint and the reference outputs the generator wrote for it.
    struct Golden {
        let checkpoint: String
        let tensors: SafetensorsFile
        let cases: Cases

        init(checkpoint: String, golden folder: URL) throws {
            self.checkpoint = checkpoint
            tensors = try SafetensorsFile(path: folder.appendingPathComponent("precision_golden.safetensors").path)
            cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: folder.appendingPathComponent("precision_golden.json")))
        }
    }

    /// The NVILA-Lite-2B-shaped case runs when both are set (the checkpoint is 4 GB and its golden
    /// 190 MB, neither committed): `DENSECAP_ACCURACY_CHECKPOINT` (written by
    /// tools/fixtures/make_nvila_lite_bench_model.py) and `DENSECAP_ACCURACY_GOLDEN` (written for it
    /// by `tools/fixtures/gen_precision_fixtures.py --checkpoint CKPT --out DIR`).
    static let realShapeEnvironment: (checkpoint: String, golden: String)? = {
        let env = ProcessInfo.processInfo.environment
        guard let c = env["DENSECAP_ACCURACY_CHECKPOINT"], let g = env["DENSECAP_ACCURACY_GOLDEN"] else { return nil }
        return (c, g)
    }()

    /// Tolerances per precision: tower cosine (min over tokens) and projector relative error against
    /// fp32 and against the same-precision reference, mean logits KL against fp32, and the share of
    /// greedy tokens equal to the fp32 reference's.
    struct Bounds {
        let towerCosine: Double, towerCosineSame: Double
        let projectorError: Double, projectorErrorSame: Double
        let klFP32: Double, greedyAgreement: Double, greedyAgreementSame: Double
        let same: String  // the same-precision reference
        /// Share of prompt positions whose argmax equals the fp32 reference's (teacher-forced: each
        /// position sees the same prompt, so one flipped token does not carry into the next).
        let forcedAgreement: Double
    }
    static let bounds: [Precision: Bounds] = [
        .fp32: Bounds(towerCosine: 0.999_999, towerCosineSame: 0.999_999, projectorError: 1e-5, projectorErrorSame: 1e-5,
                      klFP32: 1e-8, greedyAgreement: 1, greedyAgreementSame: 1, same: "fp32", forcedAgreement: 1),
        .bf16: Bounds(towerCosine: 0.999, towerCosineSame: 0.9999, projectorError: 0.02, projectorErrorSame: 0.002,
                      klFP32: 1e-3, greedyAgreement: 0.85, greedyAgreementSame: 0.95, same: "bf16_emul", forcedAgreement: 0.95),
        // Random tiny weights give greedy margins of a few hundredths, so int8's logit error flips
        // some tokens against fp32; against the int8 reference the tokens must agree.
        .int8: Bounds(towerCosine: 0.995, towerCosineSame: 0.9995, projectorError: 0.05, projectorErrorSame: 0.002,
                      klFP32: 5e-3, greedyAgreement: 0.65, greedyAgreementSame: 0.95, same: "int8_emul", forcedAgreement: 0.8),
    ]

    /// The same measures on NVILA-Lite-2B's shapes (so400m tower over 1152 channels, 26 layers;
    /// Qwen2.5-1.5B over 151936 logits), bounds stated from the measured run (README) with margin.
    /// Random weights spread the logits over 151936 tokens with tiny margins, so free-running greedy
    /// text diverges for good at its first flipped token: PyTorch's own int8 emulation keeps 15 % of
    /// fp32's greedy tokens, its bf16 73 %. The teacher-forced top-1 share is the steadier measure.
    /// int8 against its own reference is looser here than on the tiny model: rounding activations
    /// to integers is discontinuous, and each row's scale is its maximum, so an ulp of difference
    /// flips a few roundings, the flipped outputs move the next layer's row maxima, and with them
    /// that row's whole grid. PyTorch's emulation alone moves its 2B-shaped projector output by 3e-3
    /// for a 1e-7 relative input perturbation (10, then 170, then 727 flipped activations through
    /// its three Linears).
    static let realShapeBounds: [Precision: Bounds] = [
        .fp32: Bounds(towerCosine: 0.999_99, towerCosineSame: 0.999_99, projectorError: 1e-4, projectorErrorSame: 1e-4,
                      klFP32: 1e-6, greedyAgreement: 1, greedyAgreementSame: 1, same: "fp32", forcedAgreement: 1),
        .bf16: Bounds(towerCosine: 0.9999, towerCosineSame: 0.9999, projectorError: 0.01, projectorErrorSame: 0.005,
                      klFP32: 5e-4, greedyAgreement: 0.75, greedyAgreementSame: 0.75, same: "bf16_emul", forcedAgreement: 0.9),
        .int8: Bounds(towerCosine: 0.999, towerCosineSame: 0.999, projectorError: 0.05, projectorErrorSame: 0.03,
                      klFP32: 1e-2, greedyAgreement: 0.05, greedyAgreementSame: 0.1, same: "int8_emul", forcedAgreement: 0.5),
    ]

    static func tilePixels(_ size: Int) -> Tensor {
        var values = [Float](repeating: 0, count: 3 * size * size)
        for c in 0..<3 { for y in 0..<size { for x in 0..<size {
            values[(c * size + y) * size + x] = Float((37 * x + 17 * y + 101 * c) % 255) / 127.5 - 1
        } } }
        return Tensor(shape: [3, size, size], scalars: values)
    }

    /// min over rows of cos(a_r, b_r), and the cosine of the whole tensors.
    static func cosines(_ a: Tensor, _ b: Tensor) -> (minRow: Double, whole: Double) {
        let w = a.shape.last!
        func cos(_ x: ArraySlice<Float>, _ y: ArraySlice<Float>) -> Double {
            var dot = 0.0, nx = 0.0, ny = 0.0
            for (p, q) in zip(x, y) { dot += Double(p) * Double(q); nx += Double(p) * Double(p); ny += Double(q) * Double(q) }
            return dot / max((nx * ny).squareRoot(), 1e-30)
        }
        let rows = (0..<(a.count / w)).map { r in cos(a.scalars[r * w..<(r + 1) * w], b.scalars[r * w..<(r + 1) * w]) }
        return (rows.min() ?? 1, cos(a.scalars[...], b.scalars[...]))
    }

    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        var num = 0.0, den = 0.0
        for (p, q) in zip(a.scalars, b.scalars) { num += Double(p - q) * Double(p - q); den += Double(q) * Double(q) }
        return (num / max(den, 1e-30)).squareRoot()
    }

    /// Mean over rows of KL(softmax(reference) ‖ softmax(actual)).
    static func meanKL(reference: Tensor, actual: Tensor) -> Double {
        let V = reference.shape[1]
        var total = 0.0
        for r in 0..<reference.shape[0] {
            let p = Reference.softmax(Tensor(shape: [1, V], scalars: Array(reference.scalars[r * V..<(r + 1) * V]))).scalars
            let q = Reference.softmax(Tensor(shape: [1, V], scalars: Array(actual.scalars[r * V..<(r + 1) * V]))).scalars
            for i in 0..<V where p[i] > 0 { total += Double(p[i]) * log(Double(p[i]) / max(Double(q[i]), 1e-45)) }
        }
        return total / Double(reference.shape[0])
    }

    @Test(arguments: [Precision.fp32, .bf16, .int8])
    func accuracy(precision: Precision) throws {
        let golden = try Golden(checkpoint: Self.fixtures.appendingPathComponent("tiny-nvila-lite").path, golden: Self.fixtures)
        try Self.measure(golden, precision: precision, bound: try #require(Self.bounds[precision]))
    }

    @Test(.enabled(if: realShapeEnvironment != nil, "set DENSECAP_ACCURACY_CHECKPOINT and DENSECAP_ACCURACY_GOLDEN"),
          arguments: [Precision.fp32, .bf16, .int8])
    func realShapeAccuracy(precision: Precision) throws {
        let env = try #require(Self.realShapeEnvironment)
        let golden = try Golden(checkpoint: env.checkpoint, golden: URL(fileURLWithPath: env.golden))
        try Self.measure(golden, precision: precision, bound: try #require(Self.realShapeBounds[precision]))
    }

    static func measure(_ golden: Golden, precision: Precision, bound: Bounds) throws {
        Numerics.setThreads(2)
        let model = try NVILAModel.load(directory: golden.checkpoint, logger: silentLogger,
                                        precision: PrecisionSettings(all: precision))
        let g = { (name: String) in try golden.tensors.tensor(name) }
        // Tower on one tile.
        let features = model.tower(tilePixels(model.tileSize))
        let towerFP32 = cosines(features, try g("tower.fp32"))
        let towerSame = cosines(features, try g("tower.\(bound.same)"))
        let towerTorchBF16 = cosines(features, try g("tower.bf16_torch"))
        #expect(towerFP32.minRow >= bound.towerCosine, "tower cosine vs fp32 \(towerFP32)")
        #expect(towerSame.minRow >= bound.towerCosineSame, "tower cosine vs \(bound.same) \(towerSame)")
        // Projector on the fp32 reference features.
        let projected = model.projector(try g("tower.fp32"))
        let projFP32 = relativeError(projected, try g("projector.fp32"))
        let projSame = relativeError(projected, try g("projector.\(bound.same)"))
        let projTorchBF16 = relativeError(projected, try g("projector.bf16_torch"))
        #expect(projFP32 <= bound.projectorError, "projector error vs fp32 \(projFP32)")
        #expect(projSame <= bound.projectorErrorSame, "projector error vs \(bound.same) \(projSame)")
        // LLM: logits at every prompt position, and 12 greedy tokens.
        var kl = 0.0, klSame = 0.0, klTorchBF16 = 0.0, agree = 0, agreeSame = 0, total = 0, forced = 0, positions = 0
        for (i, prompt) in golden.cases.prompts.enumerated() {
            var cache = KVCache(config: model.llm.config)
            let logits = model.llm.forward(try model.llm.embed(prompt.ids), cache: &cache, logits: .all)
            let reference = try g("llm.\(i).fp32")
            kl += meanKL(reference: reference, actual: logits)
            forced += zip(argmaxRows(logits), argmaxRows(reference)).filter { $0 == $1 }.count
            positions += reference.shape[0]
            klSame += meanKL(reference: try g("llm.\(i).\(bound.same)"), actual: logits)
            klTorchBF16 += meanKL(reference: try g("llm.\(i).bf16_torch"), actual: logits)
            let ids = try model.llm.generate(ids: prompt.ids, options: GenerationOptions(maxNewTokens: prompt.greedy_fp32.count))
            let same = ["fp32": prompt.greedy_fp32, "bf16_emul": prompt.greedy_bf16_emul, "int8_emul": prompt.greedy_int8_emul][bound.same]!
            agree += zip(ids, prompt.greedy_fp32).filter { $0 == $1 }.count
            agreeSame += zip(ids, same).filter { $0 == $1 }.count
            total += ids.count
        }
        let n = Double(golden.cases.prompts.count)
        let agreement = Double(agree) / Double(total)
        #expect(kl / n <= bound.klFP32, "logits KL vs fp32 \(kl / n)")
        #expect(agreement >= bound.greedyAgreement, "greedy agreement vs fp32 \(agreement)")
        let agreementSame = Double(agreeSame) / Double(total)
        #expect(agreementSame >= bound.greedyAgreementSame, "greedy agreement vs \(bound.same) \(agreementSame)")
        let forcedAgreement = Double(forced) / Double(positions)
        #expect(forcedAgreement >= bound.forcedAgreement, "teacher-forced top-1 agreement vs fp32 \(forcedAgreement)")
        // The measured figures, for README's table (`swift test --filter PrecisionAccuracyTests`).
        print(URL(fileURLWithPath: golden.checkpoint).lastPathComponent, String(format: "precision %@: tower cos vs fp32 min %.6f (whole %.6f), vs %@ min %.6f, vs torch-bf16 min %.6f; projector rel err vs fp32 %.2e, vs %@ %.2e, vs torch-bf16 %.2e; logits KL vs fp32 %.2e, vs %@ %.2e, vs torch-bf16 %.2e; greedy agreement vs fp32 %.3f, vs %@ %.3f (%d tokens); teacher-forced top-1 vs fp32 %.3f (%d positions)",
                     precision.rawValue, towerFP32.minRow, towerFP32.whole, bound.same, towerSame.minRow, towerTorchBF16.minRow,
                     projFP32, bound.same, projSame, projTorchBF16, kl / n, bound.same, klSame / n, klTorchBF16 / n,
                     agreement, bound.same, agreementSame, total, forcedAgreement, positions))
    }
}
