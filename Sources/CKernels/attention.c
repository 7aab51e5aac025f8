// Fused (flash-style) attention for one head and a block of up to DC_ATT_ROWS queries: scores for
// DC_ATT_KEYS keys at a time stay in registers and a small stack block, softmax is online (running
// max and sum, earlier output rescaled), and P·V accumulates straight into the output block. No
// [L, T] scores matrix is ever written, and nothing is zeroed but the block's own accumulators.
// Written with GCC vector types so each target_clones clone (AVX-512, AVX2+FMA, SSE2) gets the
// register width of its CPU; Reference.attention (Double, by definition) is the naive twin.
#include "ckernels.h"
#include "dc_math.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__ELF__)
#define DC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DC_CLONES
#endif

typedef float dc_v16 __attribute__((vector_size(64)));

// Macros, not functions: a 64-byte vector may not cross a call in the clones without AVX-512.
#define DC_LOAD16(dst, p) memcpy(&(dst), (p), sizeof(dc_v16))
#define DC_STORE16(p, v) memcpy((p), &(v), sizeof(dc_v16))
#define DC_SPLAT16(x) ((dc_v16){(x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x), (x)})

size_t dc_attention_padded_keys(size_t keys) { return (keys + DC_ATT_KEYS - 1) / DC_ATT_KEYS * DC_ATT_KEYS; }
size_t dc_attention_padded_dim(size_t d) { return (d + 31) / 32 * 32; }

DC_CLONES
void dc_attention_pack(const float *keys, const float *values, size_t ld, size_t count, size_t d, float *kt, float *vp) {
    const size_t tp = dc_attention_padded_keys(count), dp = dc_attention_padded_dim(d);
    // K in blocks of DC_ATT_KEYS keys, each block [d, 32] contiguous: a whole-row transpose would
    // put the d rows one block reads a multiple of 4 KiB apart, all in one L1 set.
    for (size_t j0 = 0; j0 < tp; j0 += DC_ATT_KEYS) {
        float *block = kt + j0 * d;
        for (size_t c = 0; c < d; c++) {
            for (size_t j = 0; j < DC_ATT_KEYS; j++) block[c * DC_ATT_KEYS + j] = j0 + j < count ? keys[(j0 + j) * ld + c] : 0.0f;
        }
    }
    for (size_t j = 0; j < tp; j++) {
        float *row = vp + j * dp;
        if (j < count) {
            memcpy(row, values + j * ld, d * sizeof(float));
            for (size_t c = d; c < dp; c++) row[c] = 0;
        } else {
            memset(row, 0, dp * sizeof(float));
        }
    }
}

DC_CLONES
void dc_attention_block(const float *q, size_t ldq, size_t rows, const float *kt, const float *vp, size_t keys, size_t d,
                        size_t first_visible, int causal, float scale, float *out, size_t ldo) {
    enum { R = DC_ATT_ROWS, KB = DC_ATT_KEYS };
    const size_t tp = dc_attention_padded_keys(keys), dp = dc_attention_padded_dim(d);
    if (rows == 0 || rows > R || d > DC_ATT_MAX_DIM) return;
    float qs[R][DC_ATT_MAX_DIM];  // the block's queries, pre-scaled by 1/√d; missing rows zero
    float acc[R][DC_ATT_MAX_DIM];  // unnormalised output rows (first dp columns used)
    float peak[R], total[R];
    size_t limit[R];  // keys row i may see
    for (size_t i = 0; i < R; i++) {
        for (size_t c = 0; c < d; c++) qs[i][c] = i < rows ? q[i * ldq + c] * scale : 0.0f;
        for (size_t c = 0; c < dp; c++) acc[i][c] = 0;
        peak[i] = -INFINITY;
        total[i] = 0;
        size_t visible = causal ? first_visible + i : keys;
        limit[i] = visible < keys ? visible : keys;
    }
    size_t end = 0;
    for (size_t i = 0; i < rows; i++) end = limit[i] > end ? limit[i] : end;
    float p[R][KB];
    for (size_t j0 = 0; j0 < end && j0 < tp; j0 += KB) {
        // s [R, 32] = q_block · k[j0 ..< j0 + 32]ᵀ: 16 accumulators, d multiply-adds each.
        dc_v16 s[R][2];
        for (int i = 0; i < R; i++) s[i][0] = s[i][1] = DC_SPLAT16(0.0f);
        for (size_t c = 0; c < d; c++) {
            dc_v16 k0, k1;
            DC_LOAD16(k0, kt + j0 * d + c * KB);
            DC_LOAD16(k1, kt + j0 * d + c * KB + 16);
            for (int i = 0; i < R; i++) {
                const float qc = qs[i][c];
                const dc_v16 qv = DC_SPLAT16(qc);
                s[i][0] += qv * k0;
                s[i][1] += qv * k1;
            }
        }
        for (size_t i = 0; i < rows; i++) {
            DC_STORE16(p[i], s[i][0]);
            DC_STORE16(p[i] + 16, s[i][1]);
            if (j0 + KB > limit[i]) {  // the row's last visible key lies in this block
                for (int j = 0; j < KB; j++) p[i][j] = j0 + (size_t)j < limit[i] ? p[i][j] : -INFINITY;
            }
            // Lane-wise halves first (vectorised), then 16 scalars: a float reduction written as
            // one running value would not vectorise.
            float lanes[16];
            for (int l = 0; l < 16; l++) lanes[l] = p[i][l] > p[i][l + 16] ? p[i][l] : p[i][l + 16];
            float block_peak = -INFINITY;
            for (int l = 0; l < 16; l++) block_peak = lanes[l] > block_peak ? lanes[l] : block_peak;
            if (block_peak == -INFINITY) {  // nothing visible to this row here: weights 0
                for (int j = 0; j < KB; j++) p[i][j] = 0;
                continue;
            }
            const float next = block_peak > peak[i] ? block_peak : peak[i];
            const float rescale = dc_exp(peak[i] - next);  // 0 on the first block (−∞)
            for (int j = 0; j < KB; j++) p[i][j] = dc_exp(p[i][j] - next);
            for (int l = 0; l < 16; l++) lanes[l] = p[i][l] + p[i][l + 16];
            float sum = 0;
            for (int l = 0; l < 16; l++) sum += lanes[l];
            total[i] = total[i] * rescale + sum;
            peak[i] = next;
            if (rescale != 1.0f) {
                for (size_t c = 0; c < dp; c++) acc[i][c] *= rescale;
            }
        }
        for (size_t i = rows; i < R; i++) memset(p[i], 0, sizeof p[i]);
        // acc [R, dp] += p [R, 32] · v[j0 ..< j0 + 32]: 32 columns at a time, 16 accumulators.
        for (size_t c = 0; c < dp; c += 32) {
            dc_v16 o[R][2];
            for (int i = 0; i < R; i++) {
                DC_LOAD16(o[i][0], acc[i] + c);
                DC_LOAD16(o[i][1], acc[i] + c + 16);
            }
            for (int j = 0; j < KB; j++) {
                const float *vrow = vp + (j0 + (size_t)j) * dp + c;
                dc_v16 v0, v1;
                DC_LOAD16(v0, vrow);
                DC_LOAD16(v1, vrow + 16);
                for (int i = 0; i < R; i++) {
                    const float pj = p[i][j];
                    const dc_v16 pv = DC_SPLAT16(pj);
                    o[i][0] += pv * v0;
                    o[i][1] += pv * v1;
                }
            }
            for (int i = 0; i < R; i++) {
                DC_STORE16(acc[i] + c, o[i][0]);
                DC_STORE16(acc[i] + c + 16, o[i][1]);
            }
        }
    }
    for (size_t i = 0; i < rows; i++) {
        const float inv = total[i] > 0 ? 1.0f / total[i] : 0.0f;
        for (size_t c = 0; c < d; c++) out[i * ldo + c] = acc[i][c] * inv;
    }
}

// MARK: - one query (the decode step)
// Per head: scores over every key (the dot over d in 16 lane sums, then added lane 0 to 15, the
// tail columns d & ~15 … d − 1 after them; the same order in every clone), softmax (dc_softmax),
// then out_h = Σ_j p_j · v_j in key order. A sequence gets the same values alone or in a batch,
// and a head the same values whichever other heads one call covers: nothing depends on them.

// The naive twin: the order above written as plain loops, a head at a time.
DC_CLONES
void dc_attention_decode_naive(const float *q, const float *keys, const float *values, size_t count, size_t ld, size_t d,
                               size_t group, size_t head_begin, size_t head_end, float scale, float *scores, float *out) {
    const size_t vector_d = d & ~(size_t)15;
    for (size_t h = head_begin; h < head_end; h++) {
        const size_t g = h / group;
        const float *qh = q + h * d;
        float *sh = scores + (h - head_begin) * count;
        for (size_t j = 0; j < count; j++) {
            const float *kj = keys + j * ld + g * d;
            float lanes[16] = {0};
            for (size_t c = 0; c < vector_d; c += 16) {
                for (int l = 0; l < 16; l++) lanes[l] += qh[c + l] * kj[c + l];
            }
            float dot = 0;
            for (int l = 0; l < 16; l++) dot += lanes[l];
            for (size_t c = vector_d; c < d; c++) dot += qh[c] * kj[c];
            sh[j] = dot * scale;
        }
        dc_softmax(sh, count);
        float *oh = out + h * d;
        for (size_t c = 0; c < d; c++) oh[c] = 0;
        for (size_t j = 0; j < count; j++) {
            const float *vj = values + j * ld + g * d;
            for (size_t c = 0; c < d; c++) oh[c] += sh[j] * vj[c];
        }
    }
}

// The fast kernel, per key/value head g and the query heads of [head_begin, head_end) that read it:
// - scores: 16 keys at a time against one head, 16 independent lane accumulators (one per key)
//   over d; the 16 × 16 block of lane sums is transposed in registers, so adding its rows 0 … 15
//   gives the 16 dots at once, each in the naive order. The head loop sits inside the key block,
//   so each key comes from memory once for the whole group (the other heads find it in L1).
// - P·V: up to DC_DEC_HEADS heads × 64 columns of output in 24 registers through a block of
//   DC_DEC_VALUES keys, each value row's 64 columns loaded once for those heads (a larger group's
//   next heads find the block in L1), every output element summed in key order.
enum { DC_DEC_KEYS = 16, DC_DEC_HEADS = 6, DC_DEC_TILE = 64, DC_DEC_VALUES = 32 };

// Stage `bit` of the transpose: rows r and r + bit exchange the lanes whose `bit` differs from the
// row's, so after the stages 1, 2, 4, 8 row l holds lane l of every original row.
#define DC_SWAP(a, r, bit, LO, HI)                                         \
    do {                                                                  \
        const dc_v16 x_ = (a)[r], y_ = (a)[(r) + (bit)];                  \
        (a)[r] = __builtin_shufflevector(x_, y_, LO);                      \
        (a)[(r) + (bit)] = __builtin_shufflevector(x_, y_, HI);            \
    } while (0)
#define DC_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define DC_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define DC_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define DC_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define DC_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define DC_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define DC_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define DC_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31

// s[0 … 15] = scale · q_h · k_j for the 16 keys at k (row stride ld), columns 0 … d − 1.
static inline __attribute__((always_inline)) void dc_decode_dots(const float *qh, const float *k, size_t ld, size_t d,
                                                                 float scale, float *s) {
    const size_t vector_d = d & ~(size_t)15;
    dc_v16 a[16];
    for (int j = 0; j < 16; j++) a[j] = DC_SPLAT16(0.0f);
    for (size_t c = 0; c < vector_d; c += 16) {
        dc_v16 qv;
        DC_LOAD16(qv, qh + c);
        for (int j = 0; j < 16; j++) {
            dc_v16 kv;
            DC_LOAD16(kv, k + (size_t)j * ld + c);
            a[j] += qv * kv;
        }
    }
    for (int r = 0; r < 16; r++) {
        if (!(r & 1)) DC_SWAP(a, r, 1, DC_LO1, DC_HI1);
    }
    for (int r = 0; r < 16; r++) {
        if (!(r & 2)) DC_SWAP(a, r, 2, DC_LO2, DC_HI2);
    }
    for (int r = 0; r < 16; r++) {
        if (!(r & 4)) DC_SWAP(a, r, 4, DC_LO4, DC_HI4);
    }
    for (int r = 0; r < 8; r++) DC_SWAP(a, r, 8, DC_LO8, DC_HI8);
    dc_v16 dot = DC_SPLAT16(0.0f);
    for (int l = 0; l < 16; l++) dot += a[l];  // lane j: key j's lane sums, lane 0 first
    DC_STORE16(s, dot);
    for (int j = 0; j < 16; j++) {
        float t = s[j];
        for (size_t c = vector_d; c < d; c++) t += qh[c] * k[(size_t)j * ld + c];
        s[j] = t * scale;
    }
}

// o_h[c0 … c0 + 63] (+)= Σ_j p_h[j] · v_j over keys j of [j0, j1) for `heads` (≤ DC_DEC_HEADS)
// heads, p_h = p + h · count; the first block (j0 = 0) starts from zero, later ones from `out`.
static inline __attribute__((always_inline)) void dc_decode_pv_tile(const float *p, size_t count, size_t j0, size_t j1,
                                                                    const float *v, size_t ld, int heads, float *out,
                                                                    size_t d) {
    dc_v16 o[DC_DEC_HEADS][4];
    for (int h = 0; h < heads; h++) {
        for (int t = 0; t < 4; t++) {
            if (j0 == 0) o[h][t] = DC_SPLAT16(0.0f);
            else DC_LOAD16(o[h][t], out + (size_t)h * d + 16 * t);
        }
    }
    for (size_t j = j0; j < j1; j++) {
        dc_v16 vt[4];
        for (int t = 0; t < 4; t++) DC_LOAD16(vt[t], v + j * ld + 16 * t);
        for (int h = 0; h < heads; h++) {
            const float pj = p[(size_t)h * count + j];
            const dc_v16 pv = DC_SPLAT16(pj);
            for (int t = 0; t < 4; t++) o[h][t] += pv * vt[t];
        }
    }
    for (int h = 0; h < heads; h++) {
        for (int t = 0; t < 4; t++) DC_STORE16(out + (size_t)h * d + 16 * t, o[h][t]);
    }
}

DC_CLONES
void dc_attention_decode(const float *q, const float *keys, const float *values, size_t count, size_t ld, size_t d,
                         size_t group, size_t head_begin, size_t head_end, float scale, float *scores, float *out) {
    if (d > DC_ATT_MAX_DIM || count == 0) {
        dc_attention_decode_naive(q, keys, values, count, ld, d, group, head_begin, head_end, scale, scores, out);
        return;
    }
    const size_t full = count / DC_DEC_KEYS * DC_DEC_KEYS;
    const size_t tiled_d = d / DC_DEC_TILE * DC_DEC_TILE;
    float padded[DC_DEC_KEYS * DC_ATT_MAX_DIM];  // the last partial block of keys, zero rows after `count`
    float s[DC_DEC_KEYS];
    for (size_t h0 = head_begin; h0 < head_end;) {
        const size_t g = h0 / group, h1 = (g + 1) * group < head_end ? (g + 1) * group : head_end;
        const float *kg = keys + g * d, *vg = values + g * d;
        float *sg = scores + (h0 - head_begin) * count;  // [h1 − h0, count]
        for (size_t j0 = 0; j0 < full; j0 += DC_DEC_KEYS) {
            for (size_t h = h0; h < h1; h++) {
                dc_decode_dots(q + h * d, kg + j0 * ld, ld, d, scale, s);
                memcpy(sg + (h - h0) * count + j0, s, sizeof s);
            }
        }
        if (full < count) {
            const size_t rest = count - full;
            for (size_t j = 0; j < DC_DEC_KEYS; j++) {
                if (j < rest) memcpy(padded + j * d, kg + (full + j) * ld, d * sizeof(float));
                else memset(padded + j * d, 0, d * sizeof(float));
            }
            for (size_t h = h0; h < h1; h++) {
                dc_decode_dots(q + h * d, padded, d, d, scale, s);
                memcpy(sg + (h - h0) * count + full, s, rest * sizeof(float));
            }
        }
        for (size_t h = h0; h < h1; h++) dc_softmax(sg + (h - h0) * count, count);
        // Head blocks of at most DC_DEC_HEADS, as even as they can be (7 heads: 4 and 3).
        const size_t n = h1 - h0, blocks = (n + DC_DEC_HEADS - 1) / DC_DEC_HEADS;
        for (size_t j0 = 0; j0 < count; j0 += DC_DEC_VALUES) {
            const size_t j1 = j0 + DC_DEC_VALUES < count ? j0 + DC_DEC_VALUES : count;
            for (size_t b = 0, hb = 0; b < blocks; b++) {
                const size_t size = (n - hb + (blocks - b) - 1) / (blocks - b);
                const float *p = sg + hb * count;
                float *o = out + (h0 + hb) * d;
                for (size_t c0 = 0; c0 < tiled_d; c0 += DC_DEC_TILE) {
                    switch (size) {  // constant head counts, so the accumulators stay in registers
                    case 1: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 1, o + c0, d); break;
                    case 2: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 2, o + c0, d); break;
                    case 3: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 3, o + c0, d); break;
                    case 4: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 4, o + c0, d); break;
                    case 5: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 5, o + c0, d); break;
                    default: dc_decode_pv_tile(p, count, j0, j1, vg + c0, ld, 6, o + c0, d); break;
                    }
                }
                for (size_t h = 0; h < size && tiled_d < d; h++) {  // columns past the last 64: plain loops
                    float *oh = o + h * d;
                    const float *ph = p + h * count;
                    if (j0 == 0) {
                        for (size_t c = tiled_d; c < d; c++) oh[c] = 0;
                    }
                    for (size_t j = j0; j < j1; j++) {
                        const float *vj = vg + j * ld;
                        for (size_t c = tiled_d; c < d; c++) oh[c] += ph[j] * vj[c];
                    }
                }
                hb += size;
            }
        }
        h0 = h1;
    }
}
