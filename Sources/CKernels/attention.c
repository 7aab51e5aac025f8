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
// same in every clone), softmax (dc_softmax), then out_h = Σ_j p_j · v_j in key order. A sequence
// gets the same values alone or in a batch: nothing depends on the other sequences.
DC_CLONES
void dc_attention_decode(const float *q, const float *keys, const float *values, size_t count, size_t ld, size_t d,
                         size_t group, size_t head_begin, size_t head_end, float scale, float *scores, float *out) {
    const size_t vector_d = d & ~(size_t)15;
    for (size_t h = head_begin; h < head_end; h++) {
        const size_t g = h / group;
        const float *qh = q + h * d;
        for (size_t j = 0; j < count; j++) {
            const float *kj = keys + j * ld + g * d;
            dc_v16 acc = DC_SPLAT16(0.0f);
            for (size_t c = 0; c < vector_d; c += 16) {
                dc_v16 a, b;
                DC_LOAD16(a, qh + c);
                DC_LOAD16(b, kj + c);
                acc += a * b;
            }
            float dot = 0;
            for (int l = 0; l < 16; l++) dot += acc[l];
            for (size_t c = vector_d; c < d; c++) dot += qh[c] * kj[c];
            scores[j] = dot * scale;
        }
        dc_softmax(scores, count);
        float *oh = out + h * d;
        for (size_t c = 0; c < d; c++) oh[c] = 0;
        for (size_t j = 0; j < count; j++) {
            const float p = scores[j];
            const float *vj = values + j * ld + g * d;
            for (size_t c = 0; c < d; c++) oh[c] += p * vj[c];
        }
    }
}
