import DenseCore
import Foundation
import Logging
import Testing

@testable import Engine

/// A file in Tests/EngineTests/Fixtures (written by tools/fixtures/gen_engine_fixtures.py).
func fixture(_ relative: String) throws -> String {
    let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return url.appendingPathComponent(relative).path
}

let silentLogger: Logger = {
    var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}()

/// |a − e| ≤ tolerance · max|e| for every element (the issue's "relative to the largest value").
func expectClose(_ actual: Tensor, _ expected: Tensor, relative tolerance: Float, _ what: String) {
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs \(expected.shape)")
    guard actual.shape == expected.shape else { return }
    let scale = expected.scalars.map(abs).max() ?? 1
    var worst: (index: Int, diff: Float) = (0, 0)
    for i in actual.scalars.indices {
        let d = abs(actual.scalars[i] - expected.scalars[i])
        if d > worst.diff || d.isNaN { worst = (i, d) }
    }
    #expect(worst.diff <= tolerance * scale,
        "\(what): max |diff| \(worst.diff) at \(worst.index) (got \(actual.scalars[worst.index]), want \(expected.scalars[worst.index])) > \(tolerance) × \(scale)")
}

struct QwenGolden: Decodable {
    struct Case: Decodable {
        let greedy_ids: [Int]
        let greedy_ids_with_stop: [Int]
    }
    let prompt_text: String
    let prompt_ids: [Int]
    let stop_token_id: Int
    let models: [String: Case]
}

@Suite(.serialized) struct Qwen2ConfigTests {
    @Test func readsTransformers4And5Keys() throws {
        let v4 = try Qwen2Config.load(directory: try fixture("tiny-qwen2"))
        let v5 = try Qwen2Config.load(directory: try fixture("tiny-qwen2-tf5config"))
        #expect(v4.ropeTheta == 1_000_000)
        #expect(v4 == v5 || (v4.ropeTheta == v5.ropeTheta && v4.hiddenSize == v5.hiddenSize && v4.layers == v5.layers))
        #expect(v4.hiddenSize == 64 && v4.layers == 2 && v4.heads == 4 && v4.kvHeads == 2 && v4.headDim == 16)
        #expect(v4.tieWordEmbeddings)
        #expect(v4.dtype == "bfloat16")
    }

    @Test(arguments: [
        (#"{"hidden_act":"gelu"}"#, "hidden_act"), (#"{"rope_scaling":{"type":"yarn","factor":4}}"#, "rope_scaling.rope_type"),
        (#"{"num_key_value_heads":3}"#, "num_key_value_heads"), (#"{"use_sliding_window":true}"#, "use_sliding_window"),
    ])
    func unsupportedValuesNameTheKey(patch: String, key: String) throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: try fixture("tiny-qwen2/config.json")))) as! [String: Any]
        let extra = try JSONSerialization.jsonObject(with: Data(patch.utf8)) as! [String: Any]
        let dir = NSTemporaryDirectory() + "densecap-cfg-\(key)-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let merged = base.merging(extra) { _, new in new }
        try JSONSerialization.data(withJSONObject: merged).write(to: URL(fileURLWithPath: dir + "/config.json"))
        #expect {
            _ = try Qwen2Config.load(directory: dir)
        } throws: { ($0 as? ConfigError)?.key == key }
    }
}

@Suite(.serialized) struct Qwen2GoldenTests {
    let golden: QwenGolden
    let tensors: WeightStore

    init() throws {
        Numerics.setThreads(2)
        golden = try JSONDecoder().decode(QwenGolden.self, from: Data(contentsOf: URL(fileURLWithPath: try fixture("qwen2_golden.json"))))
        tensors = try WeightStore(files: [try fixture("qwen2_golden.safetensors")])
    }

    func expected(_ name: String) throws -> Tensor {
        try tensors.tensor(name, shape: try #require(tensors.shape(of: name)))
    }

    @Test func everyLayerMatchesTheReference() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger)
        let ids = golden.prompt_ids
        let embeddings = try model.embed(ids)
        expectClose(embeddings, try expected("embeddings"), relative: 1e-6, "embeddings")
        let (c, s) = ropeTables(positions: 0..<ids.count, headDim: model.config.headDim, theta: model.config.ropeTheta)
        expectClose(c, try expected("rope.cos"), relative: 1e-5, "rope.cos")
        expectClose(s, try expected("rope.sin"), relative: 1e-5, "rope.sin")
        var cache = KVCache(config: model.config)
        var seen: [String: Tensor] = [:]
        let hidden = model.decode(embeddings, cache: &cache) { seen[$0] = $1 }
        for name in ["layers.0.input_layernorm", "layers.0.attn_output", "layers.0.mlp_output", "layers.0.output", "layers.1.output"] {
            expectClose(try #require(seen[name]), try expected(name), relative: 1e-4, name)
        }
        let normed = rmsNorm(hidden, weight: model.finalNorm, eps: model.config.rmsNormEps)
        expectClose(normed, try expected("final_norm"), relative: 1e-4, "final_norm")
        var fresh = KVCache(config: model.config)
        expectClose(model.forward(embeddings, cache: &fresh, logits: .all), try expected("logits"), relative: 1e-4, "logits")
    }

    @Test(arguments: ["tiny-qwen2", "tiny-qwen2-untied", "tiny-qwen2-sharded"])
    func greedyIdsMatchTheReference(name: String) throws {
        let model = try Qwen2Model.load(directory: try fixture(name), logger: silentLogger)
        // The sharded checkpoint is the untied model saved in pieces.
        let g = try #require(golden.models[name == "tiny-qwen2-sharded" ? "tiny-qwen2-untied" : name])
        let ids = try model.generate(ids: golden.prompt_ids, options: GenerationOptions(maxNewTokens: g.greedy_ids.count))
        #expect(ids == g.greedy_ids)
        #expect(g.greedy_ids_with_stop.last == golden.stop_token_id)
        let stopped = try model.generate(
            ids: golden.prompt_ids, options: GenerationOptions(maxNewTokens: g.greedy_ids.count, stopTokens: [golden.stop_token_id]))
        #expect(stopped == g.greedy_ids_with_stop)
    }

    @Test func incrementalDecodingEqualsOnePass() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger)
        let ids = golden.prompt_ids
        var whole = KVCache(config: model.config)
        let all = model.forward(try model.embed(ids), cache: &whole, logits: .all)
        var stepwise = KVCache(config: model.config, capacity: 1)  // also exercises cache growth
        let V = model.vocabularyRows
        for (i, id) in ids.enumerated() {
            let row = model.forward(try model.embed([id]), cache: &stepwise)
            let expected = Tensor(shape: [1, V], scalars: Array(all.scalars[i * V..<(i + 1) * V]))
            expectClose(row, expected, relative: 1e-5, "position \(i)")
        }
        #expect(stepwise.count == ids.count)
    }
}

@Suite struct SamplerTests {
    @Test func greedyTakesTheFirstMaximum() {
        var s = Sampler(options: GenerationOptions(temperature: 0))
        let logits: [Float] = [0.1, 3, 3, -1]
        #expect(logits.withUnsafeBufferPointer { s.pick($0, allowed: 4) } == 1)
        #expect(logits.withUnsafeBufferPointer { s.pick($0, allowed: 1) } == 0)  // rows beyond `allowed` never win
    }

    @Test func seededSamplingIsReproducibleAndRespectsTopP() {
        let logits: [Float] = [2, 1.5, 1, 0.5, 0, -1, -2, -3]
        func draw(seed: UInt64, topP: Float) -> [Int] {
            var s = Sampler(options: GenerationOptions(temperature: 1, topP: topP, seed: seed))
            return (0..<200).map { _ in logits.withUnsafeBufferPointer { s.pick($0, allowed: 8) } }
        }
        #expect(draw(seed: 7, topP: 1) == draw(seed: 7, topP: 1))
        #expect(draw(seed: 7, topP: 1) != draw(seed: 8, topP: 1))
        #expect(Set(draw(seed: 3, topP: 1)).count > 3)
        #expect(Set(draw(seed: 3, topP: 0.01)) == [0])  // the nucleus is the top token alone
        // p(0) ≈ 0.41, p(1) ≈ 0.25: top-p 0.5 keeps exactly those two.
        #expect(Set(draw(seed: 3, topP: 0.5)) == [0, 1])
    }

    @Test func mediaIdsAreNotEmbedded() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger)
        #expect(throws: GenerationError.idOutsideVocabulary(id: model.vocabularyRows, rows: model.vocabularyRows)) {
            _ = try model.embed([1, model.vocabularyRows])
        }
    }
}
