import CKernels

#if canImport(Glibc)
    import Glibc
#endif

/// Scaled dot-product attention with grouped key/value heads, on raw key/value buffers so a KV
/// cache can be attended without copying.
///
/// - Parameters:
///   - q: `[L, heads × d]` queries for the last `L` of `keyCount` positions
///   - keys, values: `keyCount` rows of `kvHeads × d` (row stride `kvHeads × d`)
///   - causal: query `i` sees keys `0 … keyCount − L + i` (a prefix already in the cache plus
///     itself); otherwise every key
/// - Returns: `[L, heads × d]`; query head `h` uses key/value head `h / (heads / kvHeads)`.
public func attention(
    q: Tensor, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyCount: Int,
    heads: Int, kvHeads: Int, headDim d: Int, causal: Bool
) -> Tensor {
    let L = q.shape[0]
    precondition(q.rank == 2 && q.shape[1] == heads * d && heads % kvHeads == 0 && keyCount >= L,
        "attention: q \(q.shape), heads \(heads)/\(kvHeads), head dim \(d), \(keyCount) keys")
    let group = heads / kvHeads
    let offset = keyCount - L
    let scale = 1 / Float(d).squareRoot()
    if L == 1 {
        return singleQueryAttention(q: q, keys: keys, values: values, keyCount: keyCount, heads: heads, kvHeads: kvHeads, headDim: d)
    }
    if useGEMMAttention || d > Int(DC_ATT_MAX_DIM) {
        return gemmAttention(q: q, keys: keys, values: values, keyCount: keyCount, heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
    }
    var out = Tensor(uninitialized: [L, heads * d])
    // Each key/value head packed once (K transposed, V padded; `dc_attention_pack`), then fused
    // blocks of DC_ATT_ROWS queries per head: no scores matrix, no zeroed output.
    let (tp, dp) = (dc_attention_padded_keys(keyCount), dc_attention_padded_dim(d))
    let packedSize = d * tp + tp * dp
    var packed = [Float](unsafeUninitializedCapacity: kvHeads * packedSize) { _, n in n = kvHeads * packedSize }
    let rowBlock = Int(DC_ATT_ROWS)
    let blocks = (L + rowBlock - 1) / rowBlock
    q.scalars.withUnsafeBufferPointer { qp in
        out.scalars.withUnsafeMutableBufferPointer { op in
            packed.withUnsafeMutableBufferPointer { pp in
                let shared = UncheckedSendable((qp.baseAddress!, op.baseAddress!, pp.baseAddress!, keys, values))
                Numerics.parallelFor(kvHeads, costPerItem: 2 * keyCount * d) { range in
                    let (_, _, pp, keys, values) = shared.value
                    for g in range {
                        let base = pp + g * packedSize
                        dc_attention_pack(keys + g * d, values + g * d, kvHeads * d, keyCount, d, base, base + d * tp)
                    }
                }
                Numerics.parallelFor(heads * blocks, costPerItem: 4 * rowBlock * keyCount * d) { range in
                    let (qp, op, pp, _, _) = shared.value
                    for item in range {
                        let (h, b) = (item / blocks, item % blocks)
                        let row = b * rowBlock
                        let base = pp + (h / group) * packedSize
                        dc_attention_block(qp + row * heads * d + h * d, heads * d, min(rowBlock, L - row), base, base + d * tp,
                                           keyCount, d, offset + row + 1, causal ? 1 : 0, scale,
                                           op + row * heads * d + h * d, heads * d)
                    }
                }
            }
        }
    }
    return out
}

/// `DENSECAP_ATTENTION=gemm` selects the previous attention (two OpenBLAS GEMMs per head around a
/// softmax pass over a `[L, keys]` scores matrix), kept to benchmark the fused kernel against it
/// and for head dimensions above `DC_ATT_MAX_DIM`.
let useGEMMAttention: Bool = getenv("DENSECAP_ATTENTION").map { String(cString: $0) == "gemm" } ?? false

/// Attention per head as GEMM, softmax, GEMM (the path before the fused kernel).
func gemmAttention(
    q: Tensor, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyCount: Int, heads: Int, kvHeads: Int, headDim d: Int,
    causal: Bool
) -> Tensor {
    let L = q.shape[0]
    let group = heads / kvHeads
    let offset = keyCount - L
    let scale = 1 / Float(d).squareRoot()
    var out = Tensor(uninitialized: [L, heads * d])
    var scores = [Float](unsafeUninitializedCapacity: L * keyCount) { _, n in n = L * keyCount }  // written by the GEMM
    q.scalars.withUnsafeBufferPointer { qp in
        out.scalars.withUnsafeMutableBufferPointer { op in
            scores.withUnsafeMutableBufferPointer { sp in
                let sp = sp
                for h in 0..<heads {
                    let g = h / group
                    // scores [L, keyCount] = q_h · k_gᵀ · scale
                    sgemm(transposeB: true, m: L, n: keyCount, k: d, alpha: scale,
                          a: qp.baseAddress! + h * d, lda: heads * d, b: keys + g * d, ldb: kvHeads * d,
                          c: sp.baseAddress!, ldc: keyCount)
                    Numerics.parallelFor(L, costPerItem: 4 * keyCount) { range in
                        for i in range {
                            let row = sp.baseAddress! + i * keyCount
                            let visible = causal ? offset + i + 1 : keyCount
                            softmaxInPlace(row, count: visible)
                            for j in visible..<keyCount { row[j] = 0 }  // masked: no weight
                        }
                    }
                    // out_h [L, d] = P · v_g
                    sgemm(transposeB: false, m: L, n: d, k: keyCount,
                          a: sp.baseAddress!, lda: keyCount, b: values + g * d, ldb: kvHeads * d,
                          c: op.baseAddress! + h * d, ldc: heads * d)
                }
            }
        }
    }
    return out
}

/// One query (the decode step), heads split over the threads in contiguous ranges (Qwen2's 12
/// heads on 2 threads: one key/value head each), each range in C (`dc_attention_decode`: a key
/// block read once for its group's heads, 16 keys' dot products at a time, P·V in registers).
/// Over Qwen2.5-1.5B's 28 layers at 1,100 keys on 2 threads the naive twin (a head and a key at a
/// time, the kernel before) costs 7.8 ms per step and this one 2.1 ms, close to reading the 63 MB
/// of keys and values once (BENCHMARKS.md, "Grouped decode attention"). A BLAS call here would be
/// a tiny GEMV, and it leaves OpenBLAS's worker threads spinning on the cores the weight kernels
/// need next (measured: decode 10 % slower).
private func singleQueryAttention(
    q: Tensor, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyCount: Int, heads: Int, kvHeads: Int, headDim d: Int
) -> Tensor {
    var out = Tensor(uninitialized: [1, heads * d])
    q.scalars.withUnsafeBufferPointer { qp in
        out.scalars.withUnsafeMutableBufferPointer { op in
            let shared = UncheckedSendable((qp.baseAddress!, op.baseAddress!, keys, values))
            Numerics.parallelFor(heads, costPerItem: 4 * keyCount * d) { range in
                let (qp, op, keys, values) = shared.value
                decodeAttention(q: qp, keys: keys, values: values, keyCount: keyCount, kvHeads: kvHeads, headDim: d,
                                group: heads / kvHeads, heads: range, out: op, naive: useNaiveDecodeAttention)
            }
        }
    }
    return out
}

/// `DENSECAP_DECODE_ATTENTION=naive` runs the decode step on the naive twin (a head and a key at a
/// time: the kernel before the grouped one, with the same results), to benchmark against.
let useNaiveDecodeAttention: Bool = getenv("DENSECAP_DECODE_ATTENTION").map { String(cString: $0) == "naive" } ?? false

/// `dc_attention_decode` (or, with `naive`, its twin `dc_attention_decode_naive`) for the query
/// heads in `range`: `out[h, 0..<d]` for h in `range`, q `[heads, d]`, keys and values `keyCount`
/// rows of `kvHeads × d`.
func decodeAttention(
    q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyCount: Int, kvHeads: Int, headDim d: Int,
    group: Int, heads range: Range<Int>, out: UnsafeMutablePointer<Float>, naive: Bool = false
) {
    let scale = 1 / Float(d).squareRoot()
    let kernel = naive ? dc_attention_decode_naive : dc_attention_decode
    var scores = [Float](unsafeUninitializedCapacity: range.count * keyCount) { _, n in n = range.count * keyCount }
    scores.withUnsafeMutableBufferPointer { sp in
        kernel(q, keys, values, keyCount, kvHeads * d, d, group, range.lowerBound, range.upperBound, scale, sp.baseAddress!, out)
    }
}

/// `attention` on tensors: keys and values `[keyCount, kvHeads × d]`.
public func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, headDim d: Int, causal: Bool) -> Tensor {
    precondition(k.shape == v.shape && k.rank == 2 && k.shape[1] == kvHeads * d, "attention: k \(k.shape), v \(v.shape)")
    return k.scalars.withUnsafeBufferPointer { kp in
        v.scalars.withUnsafeBufferPointer { vp in
            attention(q: q, keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: k.shape[0],
                      heads: heads, kvHeads: kvHeads, headDim: d, causal: causal)
        }
    }
}
