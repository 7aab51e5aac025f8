import DenseCore
import Foundation

// Batched decode: several independent sequences advance one token per step together, so each
// weight matrix is read once per step for the whole batch (decode is bound by reading weights).
// Every sequence keeps its own KV cache and positions; a sequence leaves the batch at its stop
// token or its token limit. Each row's arithmetic is the same as decoding it alone (the
// streaming kernels sum per row in a fixed order, attention runs per sequence), so greedy
// results are identical to `generate`, token for token.

extension Qwen2Model {
    /// One decode step for several sequences: `embeddings` row b `[1, H]` goes at position
    /// `caches[b].count` of sequence b, and its keys and values are appended to `caches[b]`.
    /// - Parameter embeddings: `[B, H]`, B = `caches.count`
    /// - Returns: logits `[B, V]`
    public func forwardBatch(_ embeddings: Tensor, caches: inout [KVCache]) -> Tensor {
        let B = caches.count
        precondition(embeddings.rank == 2 && embeddings.shape == [B, config.hiddenSize],
            "forwardBatch: embeddings \(embeddings.shape) for \(B) sequences of hidden \(config.hiddenSize)")
        let (n, g, d) = (config.heads, config.kvHeads, config.headDim)
        for b in 0..<B { caches[b].reserve(caches[b].count + 1) }
        // Rotary tables row by row (each sequence at its own position).
        var cosT = Tensor(zeros: [B, d]), sinT = Tensor(zeros: [B, d])
        for b in 0..<B {
            let (c, s) = ropeTables(positions: caches[b].count..<caches[b].count + 1, headDim: d, theta: config.ropeTheta)
            cosT.scalars.replaceSubrange(b * d..<(b + 1) * d, with: c.scalars)
            sinT.scalars.replaceSubrange(b * d..<(b + 1) * d, with: s.scalars)
        }
        var hidden = embeddings
        for (i, layer) in layers.enumerated() {
            let normed = rmsNorm(hidden, weight: layer.inputNorm, eps: config.rmsNormEps)
            var q = linear(normed, weight: layer.qProj, bias: layer.qBias)  // [B, n·d]
            var k = linear(normed, weight: layer.kProj, bias: layer.kBias)  // [B, g·d]
            let v = linear(normed, weight: layer.vProj, bias: layer.vBias)
            applyRotary(&q, heads: n, cos: cosT, sin: sinT)
            applyRotary(&k, heads: g, cos: cosT, sin: sinT)
            var context = Tensor(uninitialized: [B, n * d])
            for b in 0..<B {
                caches[b].append(layer: i, keys: k.row(b), values: v.row(b))
                let count = caches[b].count + 1
                let out = caches[b].keys[i].withUnsafeBufferPointer { kp in
                    caches[b].values[i].withUnsafeBufferPointer { vp in
                        attention(q: q.row(b), keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: count,
                                  heads: n, kvHeads: g, headDim: d, causal: true)
                    }
                }
                context.scalars.replaceSubrange(b * n * d..<(b + 1) * n * d, with: out.scalars)
            }
            addInPlace(&hidden, linear(context, weight: layer.oProj))
            let post = rmsNorm(hidden, weight: layer.postNorm, eps: config.rmsNormEps)
            var gate = linear(post, weight: layer.gateProj)
            siluMultiply(&gate, linear(post, weight: layer.upProj))
            addInPlace(&hidden, linear(gate, weight: layer.downProj))
        }
        for b in 0..<B { caches[b].advance(by: 1) }
        return linear(rmsNorm(hidden, weight: finalNorm, eps: config.rmsNormEps), weight: lmHead ?? embedTokens)
    }

    /// `generate` for several prompts at once: each prompt is prefilled on its own, then all
    /// sequences decode together, one step per token, until each hits a stop token or
    /// `options.maxNewTokens`. Each sequence samples with its own `Sampler(options:)`, so the
    /// outputs equal `generate(prompt:options:allowed:)` run on each prompt alone.
    /// - Parameters:
    ///   - prompts: embeddings `[L_b, H]` per sequence
    ///   - maxBatch: sequences decoded together at most (the rest wait for a free slot)
    /// - Returns: the generated ids per prompt, in order (a stop token, if hit, is the last)
    public func generateBatch(prompts: [Tensor], options: GenerationOptions, allowed: Int? = nil, maxBatch: Int = 8) throws -> [[Int]] {
        guard !prompts.contains(where: { $0.shape[0] == 0 }) else { throw GenerationError.emptyPrompt }
        let limit = min(allowed ?? vocabularyRows, vocabularyRows)
        var outputs = [[Int]](repeating: [], count: prompts.count)
        guard options.maxNewTokens > 0 else { return outputs }
        // Sequences decoding now: their prompt index, sampler and next input token, with their
        // caches in a parallel array (`forwardBatch` appends to them in place, no copies).
        var active: [(index: Int, sampler: Sampler, next: Int)] = []
        var caches: [KVCache] = []
        var waiting = prompts.indices.makeIterator()
        func refill() {
            while active.count < max(1, maxBatch), let index = waiting.next() {
                var cache = KVCache(config: config, capacity: prompts[index].shape[0] + options.maxNewTokens)
                var sampler = Sampler(options: options)
                let logits = forward(prompts[index], cache: &cache)
                let next = logits.scalars.withUnsafeBufferPointer { sampler.pick($0, allowed: limit) }
                outputs[index].append(next)
                if options.stopTokens.contains(next) || outputs[index].count == options.maxNewTokens { continue }
                active.append((index, sampler, next))
                caches.append(cache)
            }
        }
        refill()
        while !active.isEmpty {
            let logits = forwardBatch(try embed(active.map(\.next)), caches: &caches)  // [B, V]
            let V = logits.shape[1]
            var finished: [Int] = []
            for b in active.indices {
                let next = logits.scalars.withUnsafeBufferPointer { row in
                    active[b].sampler.pick(UnsafeBufferPointer(rebasing: row[b * V..<(b + 1) * V]), allowed: limit)
                }
                outputs[active[b].index].append(next)
                active[b].next = next
                if options.stopTokens.contains(next) || outputs[active[b].index].count == options.maxNewTokens { finished.append(b) }
            }
            for b in finished.reversed() {
                active.remove(at: b)
                caches.remove(at: b)
            }
            refill()
        }
        return outputs
    }
}

extension Tensor {
    /// Row `r` of a `[rows, w]` tensor as `[1, w]`.
    func row(_ r: Int) -> Tensor {
        let w = shape[1]
        return Tensor(shape: [1, w], scalars: Array(scalars[r * w..<(r + 1) * w]))
    }
}

extension NVILAModel {
    /// Answers several independent questions about media with one batched decode (`Qwen2Model.
    /// generateBatch`): the same ids per request as `generate(text:media:options:system:)` with
    /// greedy options. Media ids are never generated.
    /// - Returns: the generated ids per request, in order
    public func generateBatch(
        _ requests: [(text: String, media: [Media])], options: GenerationOptions, system: String? = nil, maxBatch: Int = 8
    ) throws -> [[Int]] {
        let prompts = try requests.map { try promptEmbeddings(text: $0.text, media: $0.media, system: system) }
        return try llm.generateBatch(prompts: prompts, options: options, allowed: llm.vocabularyRows, maxBatch: maxBatch)
    }
}
