import ArgumentParser
import DenseCore
import Engine
import Foundation
import TemporalCompress

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the engine: language-model prefill/decode speed, the vision tower, the BLAS GEMM peak, image resizing.",
        subcommands: [BenchLLM.self, BenchVision.self, BenchGEMM.self, BenchResize.self, BenchSearch.self])
}

/// Results are JSON on stdout, so scripts can put them side by side with the peers'.
private func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    Console.stdout(String(decoding: data, as: UTF8.self) + "\n")
}

struct BenchLLM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "Prefill a prompt of N tokens in one pass, then decode M tokens one by one (greedy, no stop).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Prompt length in tokens.")
    var promptTokens = 1024

    @Option(help: "Tokens to decode after the prompt.")
    var decodeTokens = 128

    @Option(help: "Repetitions; the best is reported.")
    var repeats = 1

    @Option(help: "Also decode this many sequences together (Qwen2Model.forwardBatch, after --batch-context-tokens prompts) and report the total tok/s against one sequence, alternated --repeats times (1: skip).")
    var batch = 1

    @Option(help: "Prompt tokens before the --batch decode steps (the context each step attends to).")
    var batchContextTokens = 64

    @Option(help: "Also caption-like requests: this many prompts of --caption-prompt-tokens, --decode-tokens each (greedy, no stop), answered one by one (generate) and --batch at a time (generateBatch, as caption's pass 2 does); total time of each (0: skip).")
    var captions = 0

    @Option(help: "Prompt tokens per caption-like request (1010: eight NVILA-Lite frames of 121 projected tokens and the caption prompt).")
    var captionPromptTokens = 1010

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard batch >= 1, captions >= 0, captionPromptTokens >= 1, batchContextTokens >= 1 else {
            throw ValidationError("--batch, --batch-context-tokens and --caption-prompt-tokens must be at least 1, --captions at least 0")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.bench")
        Numerics.setThreads(modelOptions.threads)
        try await reportingErrors {
            let directory = try await modelOptions.languageModelDirectory(logger: logger)
            var model: Qwen2Model!
            let loadTime = try measureSeconds { model = try Qwen2Model.load(directory: directory, logger: logger, precision: modelOptions.precision.llm) }
            let c = model.config
            let ids = model.benchmarkPrompt(promptTokens, salt: 13)
            var bestPrefill = Double.infinity, bestDecode = Double.infinity
            for _ in 0..<max(1, repeats) {
                var cache = KVCache(config: c, capacity: promptTokens + decodeTokens)
                let embeddings = try model.embed(ids)
                var logits = Tensor(zeros: [1])
                bestPrefill = min(bestPrefill, measureSeconds { logits = model.forward(embeddings, cache: &cache) })
                var next = argmaxRows(logits)[0]
                let decodeTime = try measureSeconds {
                    for _ in 0..<decodeTokens {
                        logits = model.forward(try model.embed([next]), cache: &cache)
                        next = argmaxRows(logits)[0]
                    }
                }
                bestDecode = min(bestDecode, decodeTime)
            }
            // FLOPs of one prefill: 2 per weight per token in the blocks, causal attention
            // (QKᵀ and PV over L²/2 pairs per head), and the head for the last position only.
            let (H, L) = (Double(c.hiddenSize), Double(promptTokens))
            let perLayerWeights = H * Double(c.heads * c.headDim) * 2 + H * Double(c.kvHeads * c.headDim) * 2
                + 3 * H * Double(c.intermediateSize)
            let blockFlops = 2 * perLayerWeights * L * Double(c.layers)
            let attentionFlops = 2 * 2 * (L * L / 2) * Double(c.heads * c.headDim) * Double(c.layers)
            let headFlops = 2 * H * Double(model.vocabularyRows)
            let prefillFlops = blockFlops + attentionFlops + headFlops
            // Batched decode and caption-like requests (`Engine/Generation/BatchBenchmark.swift`).
            var batched: [String: Any] = [:]
            if batch > 1 {
                let r = try model.measureBatchedDecode(batch: batch, contextTokens: batchContextTokens, steps: decodeTokens, repeats: repeats)
                batched = ["batch": r.batch, "batch_context_tokens": r.contextTokens, "batch1_decode_tok_s": r.oneSequenceTokensPerSecond,
                           "batch_decode_tok_s": r.batchTokensPerSecond, "batch_speedup": r.speedup]
            }
            if captions > 0 {
                let r = try model.measureCaptionThroughput(requests: captions, promptTokens: captionPromptTokens, answerTokens: decodeTokens,
                                                           batch: batch)
                batched.merge(["captions": r.requests, "caption_prompt_tokens": r.promptTokens, "caption_tokens": r.answerTokens,
                               "captions_one_by_one_s": r.oneByOneSeconds, "captions_batched_s": r.batchedSeconds,
                               "caption_speedup": r.speedup, "caption_prefill_s": r.prefillSeconds,
                               "captions_identical": true]) { _, new in new }
            }
            try printJSON(batched.merging([
                "model": directory, "threads": Numerics.threads, "blas": BLASRuntime.summary,
                "precision": modelOptions.precision.llm.rawValue, "kernels": LowPrecisionKernels.summary,
                "blas_core": BLASRuntime.libraryCoreName, "load_s": loadTime,
                "prompt_tokens": promptTokens, "decode_tokens": decodeTokens,
                "prefill_s": bestPrefill, "prefill_tok_s": L / bestPrefill,
                "prefill_gflops": prefillFlops / bestPrefill / 1e9,
                "decode_s": bestDecode, "decode_tok_s": Double(decodeTokens) / bestDecode,
            ] as [String: Any]) { _, new in new })
        }
    }
}

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Measure cblas_sgemm GFLOP/s on transformer shapes (X · Wᵀ, weights in checkpoint layout).")

    @Option(help: "Threads (0 = one per core).")
    var threads = 0

    @Option(help: "Shapes as MxKxN, comma separated.")
    var shapes = "1024x1536x8960,1024x8960x1536,1024x1536x1536,1024x1152x4304"

    @Option(help: "Seconds to spend per shape; the best run counts.")
    var seconds = 1.5

    func run() throws {
        Numerics.setThreads(threads)
        var results: [[String: Any]] = []
        for spec in shapes.split(separator: ",") {
            let dims = spec.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("cannot read shape '\(spec)'; use MxKxN")
            }
            let (m, k, n) = (dims[0], dims[1], dims[2])
            let x = Tensor(shape: [m, k], scalars: (0..<(m * k)).map { Float($0 % 17) * 0.01 })
            let w = Tensor(shape: [n, k], scalars: (0..<(n * k)).map { Float($0 % 13) * 0.01 })
            var best = Double.infinity
            var spent = 0.0
            while spent < self.seconds || best == .infinity {
                let t = measureSeconds { _ = linear(x, weight: w) }
                best = min(best, t)
                spent += t
            }
            results.append(["m": m, "k": k, "n": n, "best_s": best, "gflops": 2 * Double(m * k * n) / best / 1e9])
        }
        let peak = results.compactMap { $0["gflops"] as? Double }.max() ?? 0
        try printJSON(["threads": Numerics.threads, "blas": BLASRuntime.summary, "blas_core": BLASRuntime.libraryCoreName,
                       "shapes": results, "peak_gflops": peak])
    }
}

struct BenchResize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize",
        abstract: "Time the Pillow-exact resize NVILA's preprocessing runs (bicubic by default) on one image.")

    @Option(help: "Source size WxH (a deterministic pattern of that size is resized).")
    var from = "1920x1080"

    @Option(help: "Target sizes WxH, comma separated.")
    var to = "448x448,896x896,1344x1344,1792x1344"

    @Option(help: "Filter: bicubic, bilinear, box or nearest.")
    var filter = "bicubic"

    @Option(help: "Threads (0 = one per core).")
    var threads = 0

    @Option(help: "Seconds to spend per target size; the best run counts.")
    var seconds = 1.0

    func run() throws {
        Numerics.setThreads(threads)
        guard let resample = ResampleFilter.allCases.first(where: { "\($0)" == filter }) else {
            throw ValidationError("unknown filter '\(filter)'; use bicubic, bilinear, box or nearest")
        }
        let (width, height) = try Self.size(from)
        // Smooth gradients with a fine texture: content does not change the work, only the bytes.
        let pixels = (0..<width * height * 3).map { i -> UInt8 in
            let (p, c) = (i / 3, i % 3)
            return UInt8(truncatingIfNeeded: (p % width) * (c + 1) + (p / width) * 3 + (p * 7919) % 13)
        }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        var results: [[String: Any]] = []
        for spec in to.split(separator: ",") {
            let (w, h) = try Self.size(String(spec))
            var best = Double.infinity
            var spent = 0.0
            while spent < self.seconds || best == .infinity {
                let t = measureSeconds { _ = pillowResize(image, width: w, height: h, filter: resample) }
                best = min(best, t)
                spent += t
            }
            results.append(["to": "\(w)x\(h)", "best_s": best, "output_mpixel_per_s": Double(w * h) / best / 1e6])
        }
        try printJSON(["threads": Numerics.threads, "from": "\(width)x\(height)", "filter": filter, "sizes": results])
    }

    static func size(_ text: String) throws -> (Int, Int) {
        let dims = text.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 2, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("cannot read size '\(text)'; use WxH") }
        return (dims[0], dims[1])
    }
}

struct BenchVision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vision",
        abstract: "Run 448×448 tiles through the SigLIP tower (the blocks NVILA uses) and report seconds and TFLOP/s.")

    @Option(help: "A vision_tower/ folder (SigLIP config.json + safetensors), an NVILA checkpoint folder, or a model id ORG/NAME[@REVISION].")
    var model: String

    @Option(help: "Threads for BLAS and the elementwise loops (0 = one per core).")
    var threads = 0

    @Option(help: "Index into hidden_states NVILA selects (-2: all blocks but the last).")
    var selectLayer = -2

    @Option(help: "Repetitions; the best is reported.")
    var repeats = 2

    @Option(help: "Arithmetic of the blocks' matrix products: fp32, bf16 or int8.")
    var precision: Precision = .fp32

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = global.makeLogger(label: "densecap.bench")
        Numerics.setThreads(threads)
        try await reportingErrors {
            let directory = try await resolveModel(model, logger: logger)
            let nested = (directory as NSString).appendingPathComponent("vision_tower")
            let folder = FileManager.default.fileExists(atPath: (nested as NSString).appendingPathComponent("config.json")) ? nested : directory
            var tower: SiglipVisionModel!
            let loadTime = try measureSeconds {
                tower = try SiglipVisionModel.load(directory: folder, selectLayer: selectLayer, precision: precision)
            }
            let c = tower.config
            let S = c.imageSize
            // A smooth deterministic picture in [-1, 1] (content does not change the cost).
            let pixels = Tensor(shape: [3, S, S], scalars: (0..<(3 * S * S)).map { Float(($0 * 37) % 255) / 127.5 - 1 })
            var best = Double.infinity
            for _ in 0..<max(1, repeats) {
                best = min(best, measureSeconds { _ = tower(pixels) })
            }
            let flops = tower.forwardFLOPs
            logger.debug("tower: \(tower.runLayers) of \(c.layers) blocks, \(flops / 1e12) TFLOP per tile")
            try printJSON([
                "model": folder, "threads": Numerics.threads, "blas": BLASRuntime.summary, "precision": precision.rawValue, "kernels": LowPrecisionKernels.summary,
                "blas_core": BLASRuntime.libraryCoreName, "load_s": loadTime, "layers_run": tower.runLayers,
                "hidden": c.hiddenSize, "tokens": c.gridSide * c.gridSide, "tile_s": best,
                "tflop_per_tile": flops / 1e12, "tflops": flops / best / 1e12,
            ])
        }
    }
}

extension Precision: ExpressibleByArgument {}
