// Hot loops that need the CPU's vector units. Swift compiles for baseline x86-64 (SSE2, no FMA),
// and one binary must run on any x86-64, so these are C with target_clones: the dynamic loader
// picks the AVX-512, AVX2+FMA or baseline clone once, by CPUID (GNU ifunc). The loops are written
// lane by lane (16 independent accumulators) so the compiler vectorises them without reordering
// any sum; each clone computes the same products, rounding may differ by FMA contraction only.
#include "ckernels.h"
#include "dc_math.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__ELF__)
#define DC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DC_CLONES
#endif

static inline float dc_bf16(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

DC_CLONES
void dc_gemv_bf16(const float *x, const uint16_t *w, size_t begin, size_t end, size_t cols, float *out) {
    const size_t vector_cols = cols & ~(size_t)15;
    for (size_t j = begin; j < end; j++) {
        const uint16_t *row = w + j * cols;
        float acc[16] = {0};
        for (size_t i = 0; i < vector_cols; i += 16) {
            for (int l = 0; l < 16; l++) acc[l] += x[i + l] * dc_bf16(row[i + l]);
        }
        float sum = 0;
        for (int l = 0; l < 16; l++) sum += acc[l];
        for (size_t i = vector_cols; i < cols; i++) sum += x[i] * dc_bf16(row[i]);
        out[j] = sum;
    }
}

DC_CLONES
void dc_widen_bf16(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = dc_bf16(in[i]);
}

float dc_exp_scalar(float x) { return dc_exp(x); }

DC_CLONES
void dc_silu_mul(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + dc_exp(-gate[i])) * up[i];
}

DC_CLONES
void dc_gelu_tanh(float *x, size_t n) {
    // ½x(1 + tanh u) = x · σ(2u) = x / (1 + e^(−2u)), u = √(2/π)(x + 0.044715x³): no cancellation near 0.
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        x[i] = v / (1.0f + dc_exp(-2.0f * u));
    }
}

DC_CLONES
void dc_softmax(float *row, size_t n) {
    if (n == 0) return;
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = -INFINITY;
    const size_t vector_n = n & ~(size_t)15;
    for (size_t i = 0; i < vector_n; i += 16) {
        for (int l = 0; l < 16; l++) lanes[l] = row[i + l] > lanes[l] ? row[i + l] : lanes[l];
    }
    float peak = -INFINITY;
    for (int l = 0; l < 16; l++) peak = lanes[l] > peak ? lanes[l] : peak;
    for (size_t i = vector_n; i < n; i++) peak = row[i] > peak ? row[i] : peak;
    if (peak == -INFINITY) {  // every position masked: uniform rather than NaN
        for (size_t i = 0; i < n; i++) row[i] = 1.0f / (float)n;
        return;
    }
    float sums[16] = {0};
    for (size_t i = 0; i < vector_n; i += 16) {
        for (int l = 0; l < 16; l++) {
            float e = dc_exp(row[i + l] - peak);
            row[i + l] = e;
            sums[l] += e;
        }
    }
    float sum = 0;
    for (size_t i = vector_n; i < n; i++) {
        float e = dc_exp(row[i] - peak);
        row[i] = e;
        sum += e;
    }
    for (int l = 0; l < 16; l++) sum += sums[l];
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) row[i] *= inv;
}

// ⌈2²⁴/d⌉ (as ⌊2²⁴/d⌋ + 1) for d in 1…255, 0 for d = 0: the reciprocals of EventSegmenter's `hsv`.
#define DC_RCP(d) ((d) == 0 ? 0u : (1u << 24) / ((d) + ((d) == 0)) + 1u)
#define DC_RCP4(d) DC_RCP(d), DC_RCP((d) + 1), DC_RCP((d) + 2), DC_RCP((d) + 3)
#define DC_RCP16(d) DC_RCP4(d), DC_RCP4((d) + 4), DC_RCP4((d) + 8), DC_RCP4((d) + 12)
#define DC_RCP64(d) DC_RCP16(d), DC_RCP16((d) + 16), DC_RCP16((d) + 32), DC_RCP16((d) + 48)
static const uint32_t dc_reciprocals[256] = {DC_RCP64(0), DC_RCP64(64), DC_RCP64(128), DC_RCP64(192)};

// One pass of independent lanes (stride-3 loads, table gathers, selects) that vectorises, then the
// histogram, which does not (scatter), on the luma plane alone. 32-bit arithmetic is exact here:
// |numerator| ≤ delta, so |numerator|·⌈2²⁴/delta⌉ ≤ 2²⁴ + delta and ×30 stays under 2³¹; and
// delta ≤ max, so 255·delta·⌈2²⁴/max⌉ + 2²³ ≤ 255·(2²⁴ + 255) + 2²³ < 2³² (unsigned).
DC_CLONES
uint64_t dc_analyze_rgb(const uint8_t *rgb, size_t n, uint8_t *hue, uint8_t *saturation, uint8_t *value,
                        uint8_t *luma, uint32_t *histogram) {
    for (size_t i = 0; i < n; i++) {
        const int32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        int32_t mx = r > g ? r : g;
        mx = mx > b ? mx : b;
        int32_t mn = r < g ? r : g;
        mn = mn < b ? mn : b;
        const int32_t delta = mx - mn;
        const int32_t is_r = mx == r, is_g = mx == g;
        const int32_t numerator = is_r ? g - b : (is_g ? b - r : r - g);
        const int32_t base = is_r ? 0 : (is_g ? 60 : 120);
        // Truncate toward zero (OpenCV's float-to-int of hue): divide the magnitude.
        const int32_t sign = numerator >> 31;
        const int32_t magnitude = (numerator ^ sign) - sign;
        const int32_t quotient = (int32_t)(((uint32_t)magnitude * dc_reciprocals[delta] * 30u) >> 24);
        int32_t h = base + ((quotient ^ sign) - sign);
        h += (h >> 31) & 180;
        h = h < 179 ? h : 179;
        h = delta == 0 ? 0 : h;
        uint32_t s = (255u * (uint32_t)delta * dc_reciprocals[mx] + (1u << 23)) >> 24;
        s = s < 255u ? s : 255u;
        hue[i] = (uint8_t)h;
        saturation[i] = (uint8_t)s;
        value[i] = (uint8_t)mx;
        luma[i] = (uint8_t)((77 * r + 150 * g + 29 * b + 128) >> 8);
    }
    // Four partial histograms: runs of equal luma (flat regions) would otherwise chain every
    // increment through one memory cell.
    uint32_t partial[4][64] = {{0}};
    uint64_t sum = 0;
    const size_t quads = n & ~(size_t)3;
    for (size_t i = 0; i < quads; i += 4) {
        for (int l = 0; l < 4; l++) partial[l][luma[i + l] >> 2]++;
    }
    for (size_t i = quads; i < n; i++) partial[0][luma[i] >> 2]++;
    for (size_t i = 0; i < n; i++) sum += luma[i];
    for (int k = 0; k < 64; k++) histogram[k] = partial[0][k] + partial[1][k] + partial[2][k] + partial[3][k];
    return sum;
}

// Several activation rows against one weight matrix, each weight row read once for all of them
// (batched decode). Per activation row the sums run exactly as in dc_gemv_bf16 (16 lanes, lanes
// added in order, then the tail), so a row gets the same bits alone or in a batch.
// One block of R activation rows (R a constant, so the R × 16 accumulators stay in registers).
#define DC_GEMV_ROWS_BLOCK(R, WTYPE, LOAD)                                                                \
    for (size_t j = begin; j < end; j++) {                                                                \
        const WTYPE *row = w + j * cols;                                                                  \
        float acc[R][16] = {{0}};                                                                         \
        for (size_t i = 0; i < vector_cols; i += 16) {                                                    \
            float wv[16];                                                                                 \
            for (int l = 0; l < 16; l++) wv[l] = LOAD(row[i + l]);                                        \
            for (int r = 0; r < (R); r++) {                                                               \
                const float *xr = xb + r * ldx + i;                                                       \
                for (int l = 0; l < 16; l++) acc[r][l] += xr[l] * wv[l];                                  \
            }                                                                                             \
        }                                                                                                 \
        for (int r = 0; r < (R); r++) {                                                                   \
            const float *xr = xb + r * ldx;                                                               \
            float sum = 0;                                                                                \
            for (int l = 0; l < 16; l++) sum += acc[r][l];                                                \
            for (size_t i = vector_cols; i < cols; i++) sum += xr[i] * LOAD(row[i]);                      \
            ob[r * ldo + j] = sum;                                                                        \
        }                                                                                                 \
    }

#define DC_GEMV_ROWS(NAME, WTYPE, LOAD)                                                                   \
    DC_CLONES                                                                                             \
    void NAME(const float *x, size_t m, size_t ldx, const WTYPE *w, size_t begin, size_t end, size_t cols, \
              float *out, size_t ldo) {                                                                   \
        const size_t vector_cols = cols & ~(size_t)15;                                                    \
        for (size_t r0 = 0; r0 < m;) {                                                                    \
            const size_t left = m - r0;                                                                   \
            const float *xb = x + r0 * ldx;                                                               \
            float *ob = out + r0 * ldo;                                                                   \
            if (left >= 4) {                                                                              \
                DC_GEMV_ROWS_BLOCK(4, WTYPE, LOAD)                                                        \
                r0 += 4;                                                                                  \
            } else if (left >= 2) {                                                                       \
                DC_GEMV_ROWS_BLOCK(2, WTYPE, LOAD)                                                        \
                r0 += 2;                                                                                  \
            } else {                                                                                      \
                DC_GEMV_ROWS_BLOCK(1, WTYPE, LOAD)                                                        \
                r0 += 1;                                                                                  \
            }                                                                                             \
        }                                                                                                 \
    }
#define DC_LOAD_F32(v) (v)
DC_GEMV_ROWS(dc_gemv_bf16_rows, uint16_t, dc_bf16)
DC_GEMV_ROWS(dc_gemv_f32_rows, float, DC_LOAD_F32)
