// Reduced-precision matrix products, y[i, j] = Σ_k x[i, k] · w[j, k] (weights row-major [n, k],
// as checkpoints store them), chosen at run time by CPUID:
//  - bf16 × bf16 → fp32: AVX512_BF16 `vdpbf16ps` (Cooper Lake, Sapphire Rapids, Zen 4);
//  - int8 × int8 → int32: AVX-512 VNNI `vpdpbusd`, else a C loop that AVX2 clones vectorise
//    (`vpmaddwd`). VNNI multiplies unsigned by signed bytes, so activations go in offset by +128
//    (x ^ 0x80) and 128 · Σ_k w[j, k] (`wsum`, computed at quantisation) is taken off again.
// Both sweep a register tile of up to 4 activation rows × 4 weight rows along k (16 accumulators),
// with masked loads for the k tail, so no operand is padded. The naive twins are
// `Reference.linearBFloat16` and `Reference.linearInt8` (Double); tests hold these against them.
#include "ckernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__ELF__)
#include <immintrin.h>
#define DC_X86 1
#define DC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DC_X86 0
#define DC_CLONES
#endif

int dc_cpu_has_bf16_dot(void) {
#if DC_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

int dc_cpu_int8_kernel(void) {
#if DC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
#endif
    return 0;
}

DC_CLONES
void dc_round_bf16(const float *x, size_t m, size_t k, size_t lda, uint16_t *out) {
    for (size_t i = 0; i < m; i++) {
        for (size_t c = 0; c < k; c++) {
            uint32_t bits;
            memcpy(&bits, &x[i * k + c], sizeof bits);
            out[i * lda + c] = (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);  // nearest, ties to even
        }
        for (size_t c = k; c < lda; c++) out[i * lda + c] = 0;
    }
}

DC_CLONES
void dc_quantize_rows(const float *x, size_t m, size_t k, size_t lda, int8_t *q, float *scale) {
    for (size_t i = 0; i < m; i++) {
        const float *row = x + i * k;
        float peak = 0;
        for (size_t c = 0; c < k; c++) {
            const float a = fabsf(row[c]);
            peak = a > peak ? a : peak;
        }
        const float s = peak / 127.0f;
        const float inv = peak > 0 ? 127.0f / peak : 0.0f;
        for (size_t c = 0; c < k; c++) q[i * lda + c] = (int8_t)lrintf(row[c] * inv);  // |·| ≤ 127, ties to even
        for (size_t c = k; c < lda; c++) q[i * lda + c] = 0;
        scale[i] = s;
    }
}

// MARK: - Packed weights
// Weights are packed once at load into panels of 16 output rows, the k values of each row
// interleaved in the groups one dot-product instruction consumes (2 for bf16, 4 for int8):
// packed[panel][g][16][G] = w[16·panel + r][G·g + t], zero past n and k. A 512-bit load then holds
// one group of 16 outputs, and the kernel broadcasts a group of an activation row against it:
// 16 outputs per instruction, no horizontal sums. Activations are rows of lda ≥ k, zero-padded
// to a multiple of G.

size_t dc_packed_size(size_t n, size_t k, size_t group) {
    return (n + 15) / 16 * 16 * ((k + group - 1) / group * group);
}

#define DC_PACK_BODY(T)                                                                            \
    const size_t groups = (k + group - 1) / group, panels = (n + 15) / 16;                         \
    for (size_t pnl = 0; pnl < panels; pnl++)                                                      \
        for (size_t g = 0; g < groups; g++)                                                        \
            for (size_t r = 0; r < 16; r++)                                                        \
                for (size_t t = 0; t < group; t++) {                                               \
                    const size_t row = pnl * 16 + r, col = g * group + t;                          \
                    out[((pnl * groups + g) * 16 + r) * group + t] = row < n && col < k ? w[row * k + col] : (T)0; \
                }

void dc_pack_bf16(const uint16_t *w, size_t n, size_t k, uint16_t *out) {
    const size_t group = 2;
    DC_PACK_BODY(uint16_t)
}

void dc_pack_int8(const int8_t *w, size_t n, size_t k, int8_t *out) {
    const size_t group = 4;
    DC_PACK_BODY(int8_t)
}

// MARK: - bf16

#if DC_X86
#define DC_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// c[MR rows, 16·NP columns] = a[MR, 2·groups] · packed panels; the tile's accumulators in registers.
#define DC_BF16_TILE(MR, NP)                                                                                  \
    DC_BF16_TARGET __attribute__((always_inline)) static inline void dc_bf16_tile_##MR##_##NP(               \
        const uint16_t *a, size_t lda, const uint16_t *wp, size_t groups, size_t ncols, float *c, size_t ldc) { \
        __m512 acc[MR][NP];                                                                                   \
        for (int i = 0; i < MR; i++)                                                                          \
            for (int p = 0; p < NP; p++) acc[i][p] = _mm512_setzero_ps();                                    \
        for (size_t g = 0; g < groups; g++) {                                                                 \
            __m512i b[NP];                                                                                    \
            for (int p = 0; p < NP; p++) b[p] = _mm512_loadu_si512((const void *)(wp + (p * groups + g) * 32)); \
            for (int i = 0; i < MR; i++) {                                                                    \
                int32_t pair;                                                                                 \
                memcpy(&pair, a + i * lda + 2 * g, sizeof pair);                                              \
                const __m512i av = _mm512_set1_epi32(pair);                                                   \
                for (int p = 0; p < NP; p++) acc[i][p] = _mm512_dpbf16_ps(acc[i][p], (__m512bh)av, (__m512bh)b[p]); \
            }                                                                                                 \
        }                                                                                                     \
        for (int p = 0; p < NP; p++) {                                                                        \
            const size_t left = ncols > 16 * (size_t)p ? ncols - 16 * (size_t)p : 0;                           \
            const __mmask16 mask = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);                       \
            for (int i = 0; i < MR; i++) _mm512_mask_storeu_ps(c + i * ldc + 16 * p, mask, acc[i][p]);         \
        }                                                                                                     \
    }
DC_BF16_TILE(8, 2)
DC_BF16_TILE(4, 2)
DC_BF16_TILE(1, 2)
DC_BF16_TILE(8, 1)
DC_BF16_TILE(4, 1)
DC_BF16_TILE(1, 1)

DC_BF16_TARGET
void dc_gemm_bf16dot(const uint16_t *a, size_t lda, size_t m, const uint16_t *wp, size_t n, size_t k, size_t panel_begin,
                     size_t panel_end, float *c, size_t ldc) {
    const size_t groups = (k + 1) / 2;
    for (size_t pnl = panel_begin; pnl < panel_end;) {
        const size_t np = pnl + 1 < panel_end ? 2 : 1;
        const uint16_t *w = wp + pnl * groups * 32;
        const size_t col = pnl * 16, ncols = n - col < 16 * np ? n - col : 16 * np;
        size_t i = 0;
        for (; i + 8 <= m; i += 8) {
            if (np == 2) dc_bf16_tile_8_2(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
            else dc_bf16_tile_8_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
        }
        for (; i + 4 <= m; i += 4) {
            if (np == 2) dc_bf16_tile_4_2(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
            else dc_bf16_tile_4_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
        }
        for (; i < m; i++) {
            if (np == 2) dc_bf16_tile_1_2(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
            else dc_bf16_tile_1_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
        }
        pnl += np;
    }
}
#else
void dc_gemm_bf16dot(const uint16_t *a, size_t lda, size_t m, const uint16_t *wp, size_t n, size_t k, size_t panel_begin,
                     size_t panel_end, float *c, size_t ldc) {
    (void)a, (void)lda, (void)m, (void)wp, (void)n, (void)k, (void)panel_begin, (void)panel_end, (void)c, (void)ldc;
}
#endif

// MARK: - int8

DC_CLONES
void dc_int8_row_sums(const int8_t *w, size_t n, size_t k, int32_t *sums) {
    for (size_t j = 0; j < n; j++) {
        int32_t s = 0;
        for (size_t p = 0; p < k; p++) s += w[j * k + p];
        sums[j] = s;
    }
}

#if DC_X86
#define DC_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// int32 c[MR, 16·NP] = (a + 128) · packed panels, minus 128 · wsum: exactly Σ a · w.
#define DC_Q8_TILE(MR, NP)                                                                                    \
    DC_VNNI_TARGET __attribute__((always_inline)) static inline void dc_q8_tile_##MR##_##NP(                 \
        const int8_t *a, size_t lda, const int8_t *wp, size_t groups, const int32_t *wsum, size_t ncols, int32_t *c, \
        size_t ldc) {                                                                                         \
        __m512i acc[MR][NP];                                                                                  \
        for (int i = 0; i < MR; i++)                                                                          \
            for (int p = 0; p < NP; p++) acc[i][p] = _mm512_setzero_si512();                                 \
        const __m512i offset = _mm512_set1_epi8((char)0x80);                                                  \
        for (size_t g = 0; g < groups; g++) {                                                                 \
            __m512i b[NP];                                                                                    \
            for (int p = 0; p < NP; p++) b[p] = _mm512_loadu_si512((const void *)(wp + (p * groups + g) * 64)); \
            for (int i = 0; i < MR; i++) {                                                                    \
                int32_t quad;                                                                                 \
                memcpy(&quad, a + i * lda + 4 * g, sizeof quad);                                              \
                const __m512i av = _mm512_xor_si512(_mm512_set1_epi32(quad), offset);                         \
                for (int p = 0; p < NP; p++) acc[i][p] = _mm512_dpbusd_epi32(acc[i][p], av, b[p]);             \
            }                                                                                                 \
        }                                                                                                     \
        for (int p = 0; p < NP; p++) {                                                                        \
            const size_t left = ncols > 16 * (size_t)p ? ncols - 16 * (size_t)p : 0;                           \
            const __mmask16 mask = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);                       \
            const __m512i correction = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mask, wsum + 16 * p), 7);    \
            for (int i = 0; i < MR; i++)                                                                      \
                _mm512_mask_storeu_epi32(c + i * ldc + 16 * p, mask, _mm512_sub_epi32(acc[i][p], correction));   \
        }                                                                                                     \
    }
DC_Q8_TILE(8, 2)
DC_Q8_TILE(4, 2)
DC_Q8_TILE(1, 2)
DC_Q8_TILE(8, 1)
DC_Q8_TILE(4, 1)
DC_Q8_TILE(1, 1)

DC_VNNI_TARGET static void dc_gemm_q8_vnni(const int8_t *a, size_t lda, size_t m, const int8_t *wp, const int32_t *wsum, size_t n,
                                           size_t k, size_t panel_begin, size_t panel_end, int32_t *c, size_t ldc) {
    const size_t groups = (k + 3) / 4;
    for (size_t pnl = panel_begin; pnl < panel_end;) {
        const size_t np = pnl + 1 < panel_end ? 2 : 1;
        const int8_t *w = wp + pnl * groups * 64;
        const size_t col = pnl * 16, ncols = n - col < 16 * np ? n - col : 16 * np;
        const int32_t *s = wsum + col;
        size_t i = 0;
        for (; i + 8 <= m; i += 8) {
            if (np == 2) dc_q8_tile_8_2(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
            else dc_q8_tile_8_1(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
        }
        for (; i + 4 <= m; i += 4) {
            if (np == 2) dc_q8_tile_4_2(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
            else dc_q8_tile_4_1(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
        }
        for (; i < m; i++) {
            if (np == 2) dc_q8_tile_1_2(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
            else dc_q8_tile_1_1(a + i * lda, lda, w, groups, s, ncols, c + i * ldc + col, ldc);
        }
        pnl += np;
    }
}
#endif

// The same packed layout with plain loops over the 16 outputs of a panel (AVX2 clones vectorise
// them with vpmaddwd); exact integer sums, so it agrees with the VNNI kernel bit for bit.
DC_CLONES
static void dc_gemm_q8_portable(const int8_t *a, size_t lda, size_t m, const int8_t *wp, size_t n, size_t k, size_t panel_begin,
                                size_t panel_end, int32_t *c, size_t ldc) {
    const size_t groups = (k + 3) / 4;
    for (size_t i = 0; i < m; i++) {
        for (size_t pnl = panel_begin; pnl < panel_end; pnl++) {
            const int8_t *w = wp + pnl * groups * 64;
            int32_t acc[16] = {0};
            for (size_t g = 0; g < groups; g++) {
                const int8_t *x = a + i * lda + 4 * g;
                for (int r = 0; r < 16; r++)
                    for (int t = 0; t < 4; t++) acc[r] += (int16_t)x[t] * (int16_t)w[(g * 16 + r) * 4 + t];
            }
            for (size_t r = 0; r < 16 && pnl * 16 + r < n; r++) c[i * ldc + pnl * 16 + r] = acc[r];
        }
    }
}

void dc_gemm_q8(const int8_t *a, size_t lda, const float *ascale, size_t m, const int8_t *wp, const float *wscale,
                const int32_t *wsum, size_t n, size_t k, size_t panel_begin, size_t panel_end, int32_t *scratch, float *c,
                size_t ldc, int kernel) {
    // scratch: int32 [m, n] (only this call's columns are touched), then scaled into c.
#if DC_X86
    if (kernel == 2) {
        dc_gemm_q8_vnni(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, scratch, n);
    } else
#endif
    {
        (void)wsum;
        dc_gemm_q8_portable(a, lda, m, wp, n, k, panel_begin, panel_end, scratch, n);
    }
    const size_t j0 = panel_begin * 16, j1 = panel_end * 16 < n ? panel_end * 16 : n;
    for (size_t i = 0; i < m; i++)
        for (size_t j = j0; j < j1; j++) c[i * ldc + j] = (float)scratch[i * n + j] * (ascale[i] * wscale[j]);
}
