import Testing

@testable import DenseCore

/// The decode-step attention kernel (`dc_attention_decode`: 16-key blocks, a register transpose of
/// the lane sums, P·V tiles of up to 6 heads × 64 columns) against its naive twin
/// (`dc_attention_decode_naive`: plain loops, one head and one key at a time, the same order of
/// every sum). The two must agree bit for bit, for every head range a thread may be given.
@Suite(.serialized) struct DecodeAttentionTests {
    /// Runs the fast kernel or the twin on heads `range` of a seeded problem; heads outside the
    /// range keep the sentinel they start with.
    func run(keys: Int, heads: Int, kvHeads: Int, d: Int, range: Range<Int>, naive: Bool, seed: UInt64 = 40,
             edit: ((inout Tensor) -> Void)? = nil) -> [Float] {
        let q = randomTensor([1, heads * d], seed: seed)
        let k = randomTensor([keys, kvHeads * d], seed: seed + 1)
        var v = randomTensor([keys, kvHeads * d], seed: seed + 2)
        edit?(&v)
        var out = [Float](repeating: sentinel, count: heads * d)
        q.scalars.withUnsafeBufferPointer { qp in
            k.scalars.withUnsafeBufferPointer { kp in
                v.scalars.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        decodeAttention(q: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!, keyCount: keys,
                                        kvHeads: kvHeads, headDim: d, group: heads / kvHeads, heads: range,
                                        out: op.baseAddress!, naive: naive)
                    }
                }
            }
        }
        return out
    }

    let sentinel: Float = 12345

    /// Head dims with and without a tail past the 64-column tiles and the 16-lane sums (64, 72,
    /// 128, 256, 16, 8, 21), GQA groups of 1, 2, 6 (Qwen2-1.5B) and 7 (Qwen2-7B: two P·V head blocks),
    /// key counts below, at and past the 16-key block and the 32-key P·V block, up to a real
    /// caption context (1100).
    @Test(arguments: [
        (1, 12, 2, 128), (15, 12, 2, 128), (16, 12, 2, 128), (17, 12, 2, 128), (33, 12, 2, 128), (1100, 12, 2, 128),
        (1, 28, 4, 128), (47, 28, 4, 128), (1013, 28, 4, 128), (31, 7, 7, 64), (100, 14, 7, 64), (65, 4, 2, 72),
        (250, 16, 16, 72), (9, 6, 1, 16), (40, 7, 1, 8), (19, 2, 1, 21), (1024, 6, 6, 128), (257, 2, 2, 256),
    ])
    func fastKernelEqualsNaiveTwin(keys: Int, heads: Int, kvHeads: Int, d: Int) {
        let group = heads / kvHeads
        // Every head; one head; a range inside one group; one that crosses a group boundary.
        var ranges = [0..<heads, (heads - 1)..<heads, 0..<1]
        if group > 2 { ranges.append(1..<(group - 1)) }
        if kvHeads > 1 { ranges.append((group - 1)..<min(heads, group + 2)) }
        for range in ranges {
            let fast = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: range, naive: false)
            let naive = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: range, naive: true)
            // Bit for bit (a count, not the arrays, so a failure reads in one line).
            let differing = zip(fast, naive).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "keys \(keys), heads \(heads)/\(kvHeads), d \(d), range \(range)")
            // Written exactly where asked: the heads in range, nothing else.
            for h in 0..<heads {
                let written = fast[h * d..<(h + 1) * d].allSatisfy { $0 != sentinel }
                let untouched = fast[h * d..<(h + 1) * d].allSatisfy { $0 == sentinel }
                #expect(range.contains(h) ? written : untouched, "head \(h), range \(range)")
            }
            #expect(!fast.contains { $0.isNaN })
        }
    }

    /// The last key (in the partial block the kernel pads) and the first both count: changing
    /// their values moves every head's output.
    @Test(arguments: [(17, 12, 2, 128), (1100, 12, 2, 128), (5, 4, 2, 72)])
    func everyKeyCounts(keys: Int, heads: Int, kvHeads: Int, d: Int) {
        let base = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: 0..<heads, naive: false)
        for row in [0, keys - 1] {
            let moved = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: 0..<heads, naive: false) { v in
                for c in 0..<(kvHeads * d) { v.scalars[row * kvHeads * d + c] += 50 }
            }
            for h in 0..<heads {
                #expect(Array(moved[h * d..<(h + 1) * d]) != Array(base[h * d..<(h + 1) * d]), "key \(row), head \(h)")
            }
        }
    }

    /// A head's values do not depend on which other heads share its call or on the thread count.
    @Test func headsAndThreadsDoNotChangeResults() {
        let (keys, heads, kvHeads, d) = (301, 28, 4, 128)
        let together = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: 0..<heads, naive: false)
        var alone = [Float](repeating: 0, count: heads * d)
        for h in 0..<heads {
            let one = run(keys: keys, heads: heads, kvHeads: kvHeads, d: d, range: h..<(h + 1), naive: false)
            alone.replaceSubrange(h * d..<(h + 1) * d, with: one[h * d..<(h + 1) * d])
        }
        #expect(together.map(\.bitPattern) == alone.map(\.bitPattern))
        let q = randomTensor([1, heads * d], seed: 40)
        let k = randomTensor([keys, kvHeads * d], seed: 41), v = randomTensor([keys, kvHeads * d], seed: 42)
        var outputs: [Tensor] = []
        for threads in [1, 2, 3, 5] {
            Numerics.setThreads(threads)
            outputs.append(attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, headDim: d, causal: true))
        }
        Numerics.setThreads(0)
        #expect(outputs.allSatisfy { $0.scalars.map(\.bitPattern) == together.map(\.bitPattern) })
    }
}
