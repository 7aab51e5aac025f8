import DenseCore
import Foundation

/// Errors of text generation, one line each.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case idOutsideVocabulary(id: Int, rows: Int)
    case emptyPrompt

    public var description: String {
        switch self {
        case .idOutsideVocabulary(let id, let rows): "token id \(id) is outside the model's \(rows) embedding rows"
        case .emptyPrompt: "the prompt is empty"
        }
    }
}

/// How to pick tokens.
public struct GenerationOptions: Sendable, Equatable {
    public var maxNewTokens: Int
    /// 0 means greedy (argmax); above 0, logits are divided by it before sampling.
    public var temperature: Float
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches topP.
    public var topP: Float
    /// Seed of the sampler's random generator (same seed, same tokens).
    public var seed: UInt64
    /// Generation stops after emitting any of these (the stop token is included in the output).
    public var stopTokens: Set<Int>

    public init(maxNewTokens: Int = 256, temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0, stopTokens: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
    }
}

/// Picks the next token from a row of logits.
public struct Sampler {
    private var random: SplitMix64
    let options: GenerationOptions

    public init(options: GenerationOptions) {
        self.options = options
        self.random = SplitMix64(seed: options.seed)
    }

    /// - Parameters:
    ///   - logits: scores for ids `0..<logits.count`
    ///   - allowed: ids at or above this are never picked (rows beyond the tokenizer, media ids)
    public mutating func pick(_ logits: UnsafeBufferPointer<Float>, allowed: Int) -> Int {
        let n = min(allowed, logits.count)
        precondition(n > 0, "sampler: no allowed token")
        if options.temperature <= 0 {
            var best = 0
            for i in 1..<n where logits[i] > logits[best] { best = i }  // first maximum, like torch.argmax
            return best
        }
        var peak = -Float.infinity
        for i in 0..<n { peak = max(peak, logits[i]) }
        var probs = (0..<n).map { (index: $0, p: expf((logits[$0] - peak) / options.temperature)) }
        let total = probs.reduce(0) { $0 + $1.p }
        probs.sort { $0.p > $1.p || ($0.p == $1.p && $0.index < $1.index) }
        // Nucleus: the shortest prefix whose mass reaches topP (always at least one token).
        var kept = 0
        var mass: Float = 0
        while kept < probs.count && (kept == 0 || mass < options.topP * total) {
            mass += probs[kept].p
            kept += 1
        }
        var r = Float(random.nextUnit()) * mass
        for i in 0..<kept {
            r -= probs[i].p
            if r <= 0 { return probs[i].index }
        }
        return probs[kept - 1].index
    }
}

extension Qwen2Model {
    /// Generates after `prompt` embeddings `[L, H]` (text, or text with spliced visual tokens):
    /// one prefill pass over the prompt, then one token at a time through the KV cache.
    /// - Parameters:
    ///   - allowed: ids below this may be generated (default: every embedding row)
    ///   - onToken: called with each new id; return false to stop early
    /// - Returns: the generated ids (a stop token, if hit, is the last one).
    public func generate(
        prompt: Tensor, options: GenerationOptions, allowed: Int? = nil, onToken: (Int) -> Bool = { _ in true }
    ) throws -> [Int] {
        guard prompt.shape[0] > 0 else { throw GenerationError.emptyPrompt }
        // Like transformers, positions past max_position_embeddings are computed, not refused: the
        // rotary embedding has no table to run out of. Callers warn (see `exceedsContext`).
        let total = prompt.shape[0] + options.maxNewTokens
        var cache = KVCache(config: config, capacity: total)
        var sampler = Sampler(options: options)
        let limit = min(allowed ?? vocabularyRows, vocabularyRows)
        var logits = forward(prompt, cache: &cache)
        var output: [Int] = []
        while output.count < options.maxNewTokens {
            let next = logits.scalars.withUnsafeBufferPointer { sampler.pick($0, allowed: limit) }
            output.append(next)
            if options.stopTokens.contains(next) || !onToken(next) || output.count == options.maxNewTokens { break }
            logits = forward(try embed([next]), cache: &cache)
        }
        return output
    }

    /// Whether a prompt of `promptLength` plus `maxNewTokens` goes past the positions the model
    /// was trained for (`max_position_embeddings`): allowed, but worth a warning.
    public func exceedsContext(promptLength: Int, maxNewTokens: Int) -> Bool {
        promptLength + maxNewTokens > config.maxPositionEmbeddings
    }

    /// `generate` from token ids.
    public func generate(ids: [Int], options: GenerationOptions, allowed: Int? = nil, onToken: (Int) -> Bool = { _ in true }) throws -> [Int] {
        try generate(prompt: try embed(ids), options: options, allowed: allowed, onToken: onToken)
    }
}
