import DenseCore
import Foundation
import Testing

@testable import Engine

/// Batched decode gives exactly what decoding each sequence alone gives (greedy), at every
/// precision, with sequences of different lengths leaving the batch at different steps.
@Suite(.serialized) struct BatchDecodeTests {
    let golden: QwenGolden

    init() throws {
        Numerics.setThreads(2)
        golden = try JSONDecoder().decode(QwenGolden.self, from: Data(contentsOf: URL(fileURLWithPath: try fixture("qwen2_golden.json"))))
    }

    /// Five prompts of different lengths (prefixes and a reversal of the golden prompt).
    var prompts: [[Int]] {
        let ids = golden.prompt_ids
        return [ids, Array(ids.prefix(3)), Array(ids.reversed()), Array(ids.prefix(ids.count / 2)), [ids[0]]]
    }

    @Test(arguments: [Precision.fp32, .bf16, .int8])
    func batchedEqualsOneByOne(precision: Precision) throws {
        for name in ["tiny-qwen2", "tiny-qwen2-untied"] {
            let model = try Qwen2Model.load(directory: try fixture(name), logger: silentLogger, precision: precision)
            let embedded = try prompts.map { try model.embed($0) }
            // Stops on a token the sequences do produce, so some leave early and others run to the limit.
            for stops in [Set<Int>(), [golden.stop_token_id], [golden.models[name]!.greedy_ids[2]]] {
                let options = GenerationOptions(maxNewTokens: 10, stopTokens: stops)
                let alone = try embedded.map { try model.generate(prompt: $0, options: options) }
                for maxBatch in [2, 8] {
                    let batched = try model.generateBatch(prompts: embedded, options: options, maxBatch: maxBatch)
                    #expect(batched == alone, "\(name) \(precision) stops \(stops) batch \(maxBatch)")
                }
                if stops.isEmpty { #expect(alone.allSatisfy { $0.count == 10 }) }
            }
            if precision == .fp32 {
                // And the fp32 batch still gives the reference's greedy ids.
                let g = try #require(golden.models[name])
                let out = try model.generateBatch(prompts: [try model.embed(golden.prompt_ids)],
                                                  options: GenerationOptions(maxNewTokens: g.greedy_ids.count))
                #expect(out == [g.greedy_ids])
            }
        }
    }

    /// One batched step's logits are bit-identical to each sequence's own step.
    @Test func oneStepIsBitIdentical() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger)
        var caches = try prompts.prefix(3).map { ids -> KVCache in
            var c = KVCache(config: model.config)
            _ = model.forward(try model.embed(ids), cache: &c)
            return c
        }
        var singles = caches
        let next = [5, 17, 42]
        let batched = model.forwardBatch(try model.embed(next), caches: &caches)
        let V = batched.shape[1]
        for b in 0..<3 {
            let alone = model.forward(try model.embed([next[b]]), cache: &singles[b])
            #expect(Array(batched.scalars[b * V..<(b + 1) * V]) == alone.scalars)
            #expect(caches[b].count == singles[b].count)
        }
    }

    @Test func emptyPromptIsAnError() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger)
        #expect(throws: GenerationError.emptyPrompt) {
            _ = try model.generateBatch(prompts: [try model.embed([1]), Tensor(zeros: [0, model.config.hiddenSize])],
                                        options: GenerationOptions(maxNewTokens: 2))
        }
    }

    /// `bench llm --batch/--captions` (`BatchBenchmark.swift`): both arms run and agree.
    @Test func batchBenchmarksRun() throws {
        let model = try Qwen2Model.load(directory: try fixture("tiny-qwen2"), logger: silentLogger, precision: .int8)
        let rate = try model.measureBatchedDecode(batch: 3, contextTokens: 8, steps: 4, repeats: 1)
        #expect(rate.batch == 3 && rate.contextTokens == 8)
        #expect(rate.oneSequenceTokensPerSecond > 0 && rate.batchTokensPerSecond > 0 && rate.speedup.isFinite)
        let captions = try model.measureCaptionThroughput(requests: 3, promptTokens: 12, answerTokens: 5, batch: 2)
        #expect(captions.requests == 3 && captions.promptTokens == 12 && captions.answerTokens == 5)
        #expect(captions.oneByOneSeconds > 0 && captions.batchedSeconds > 0 && captions.prefillSeconds > 0)
        #expect(model.benchmarkPrompt(12, salt: 29) != model.benchmarkPrompt(12, salt: 160))
        #expect(abs(captions.speedup - captions.oneByOneSeconds / captions.batchedSeconds) < 1e-12)
        #expect(BatchBenchmarkError.batchedDiffer(request: 2).description.contains("request 2"))
    }
}

@Suite struct PrecisionSettingsTests {
    @Test func parsesEveryForm() throws {
        #expect(try PrecisionSettings(parsing: "fp32") == .fp32)
        #expect(try PrecisionSettings(parsing: "INT8") == PrecisionSettings(all: .int8))
        #expect(try PrecisionSettings(parsing: "tower=bf16,llm=int8") == PrecisionSettings(tower: .bf16, projector: .fp32, llm: .int8))
        #expect(try PrecisionSettings(parsing: "auto") == .auto())
        #expect(PrecisionSettings.auto(bf16Native: false, int8Kernel: 0) == .fp32)
        #expect(PrecisionSettings.auto(bf16Native: true, int8Kernel: 2) == PrecisionSettings(tower: .bf16, projector: .bf16, llm: .int8))
        for bad in ["fp16", "tower=fp8", "gpu=bf16", "tower:bf16", ""] {
            #expect(throws: PrecisionError.self) { _ = try PrecisionSettings(parsing: bad) }
        }
        let encoded = try JSONEncoder().encode(PrecisionSettings(tower: .bf16, projector: .fp32, llm: .int8))
        #expect(String(decoding: encoded, as: UTF8.self).contains("\"llm\":\"int8\""))
        #expect(try JSONDecoder().decode(PrecisionSettings.self, from: encoded) == PrecisionSettings(tower: .bf16, projector: .fp32, llm: .int8))
    }
}
