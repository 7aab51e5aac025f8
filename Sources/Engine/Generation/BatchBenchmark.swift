import DenseCore
import Foundation

// What `densecap bench llm --batch/--captions` measures (issue 14, item 4): the same work one
// sequence at a time and batched, timed in one process so both arms see the same load. The CLI
// only parses the flags and prints these as JSON.

/// Decode steps of one sequence against `batch` together, after prompts of `contextTokens`.
public struct BatchedDecodeRate: Sendable, Equatable {
    public var batch: Int
    public var contextTokens: Int
    /// Tokens per second of one sequence, and of the batch in total (the best of the repeats).
    public var oneSequenceTokensPerSecond: Double
    public var batchTokensPerSecond: Double
    public var speedup: Double { batchTokensPerSecond / oneSequenceTokensPerSecond }
}

/// Caption-like requests (a prompt prefilled alone, then greedy answer tokens without a stop)
/// answered one by one (`generate`) and `batch` at a time (`generateBatch`, as `caption`'s pass 2).
public struct CaptionThroughput: Sendable, Equatable {
    public var requests: Int
    public var promptTokens: Int
    public var answerTokens: Int
    public var oneByOneSeconds: Double
    public var batchedSeconds: Double
    /// One prompt's prefill alone (the mean over the requests' prompts); both arms pay it per
    /// request, so each arm less `requests` of them is its decode part (`bench/batch_decode.sh`).
    public var prefillSeconds: Double
    public var speedup: Double { oneByOneSeconds / batchedSeconds }
}

public enum BatchBenchmarkError: Error, CustomStringConvertible, Equatable {
    /// `generateBatch` gave other ids than `generate` one by one: batching changed the results.
    case batchedDiffer(request: Int)

    public var description: String {
        switch self {
        case .batchedDiffer(let request): "batched captions differ from one-by-one captions (request \(request))"
        }
    }
}

/// Wall-clock seconds `body` takes (monotonic clock).
public func measureSeconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

extension Qwen2Model {
    /// Deterministic prompt ids spread over the vocabulary (content does not change the cost);
    /// `salt` makes each sequence's prompt its own.
    public func benchmarkPrompt(_ count: Int, salt: Int) -> [Int] {
        (0..<count).map { ($0 * 7919 + salt) % min(vocabularyRows, 50_000) }
    }

    /// `steps` greedy decode steps (`forwardBatch`) for one sequence and for `batch` together, each
    /// after its own `contextTokens`-token prompt; alternated `repeats` times, the best of each, so
    /// load that comes and goes hits both alike.
    public func measureBatchedDecode(batch: Int, contextTokens: Int = 64, steps: Int, repeats: Int) throws -> BatchedDecodeRate {
        func rate(_ b: Int) throws -> Double {
            var caches = try (0..<b).map { s -> KVCache in
                var cache = KVCache(config: config, capacity: contextTokens + steps)
                _ = forward(try embed(benchmarkPrompt(contextTokens, salt: 13 + s * 101)), cache: &cache)
                return cache
            }
            var next = (0..<b).map { 100 + $0 }
            let seconds = try measureSeconds {
                for _ in 0..<steps {
                    next = argmaxRows(forwardBatch(try embed(next), caches: &caches))
                }
            }
            return Double(b * steps) / seconds
        }
        var one = 0.0, many = 0.0
        for _ in 0..<max(1, repeats) {
            one = max(one, try rate(1))
            many = max(many, try rate(batch))
        }
        return BatchedDecodeRate(batch: batch, contextTokens: contextTokens, oneSequenceTokensPerSecond: one, batchTokensPerSecond: many)
    }

    /// `requests` caption-like requests of `promptTokens` and `answerTokens` each, one by one and
    /// `batch` at a time; throws `BatchBenchmarkError.batchedDiffer` unless both give the same ids.
    public func measureCaptionThroughput(requests: Int, promptTokens: Int, answerTokens: Int, batch: Int) throws -> CaptionThroughput {
        let options = GenerationOptions(maxNewTokens: answerTokens)
        let prompts = try (0..<requests).map { s in try embed(benchmarkPrompt(promptTokens, salt: 29 + s * 131)) }
        var alone: [[Int]] = [], together: [[Int]] = []
        let oneByOne = try measureSeconds { alone = try prompts.map { try generate(prompt: $0, options: options) } }
        let batched = try measureSeconds { together = try generateBatch(prompts: prompts, options: options, maxBatch: batch) }
        guard alone == together else {
            let differing = alone.indices.first { $0 >= together.count || alone[$0] != together[$0] } ?? alone.count
            throw BatchBenchmarkError.batchedDiffer(request: differing)
        }
        var prefill = 0.0
        for prompt in prompts {
            var cache = KVCache(config: config, capacity: promptTokens)
            prefill += measureSeconds { _ = forward(prompt, cache: &cache) }
        }
        return CaptionThroughput(requests: requests, promptTokens: promptTokens, answerTokens: answerTokens, oneByOneSeconds: oneByOne,
                                 batchedSeconds: batched, prefillSeconds: prefill / Double(max(1, requests)))
    }
}
