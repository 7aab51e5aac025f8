// Reduced-precision matrix products, y[i, j] = Σ_k x[i, k] · w[j, k] (weights row-major [n, k],
// as checkpoints store them), chosen at run time by CPUID:
//  - bf16 × bf16 → fp32: AVX512_BF16 `vdpbf16ps` (Cooper Lake, Sapphire Rapids, Zen 4);
//  - int8 × int8 → int32: AVX-512 VNNI `vpdpbusd` zmm, AVX-VNNI `vpdpbusd` ymm (VEX: CPUs with
//    AVX-VNNI but not AVX-512), AVX2 `vpmaddubsw`, or plain C. VNNI multiplies unsigned by signed
//    bytes, so activations go in offset by +128 (x ^ 0x80) and 128 · Σ_k w[j, k] (`wsum`, computed
//    at quantisation) is taken off again.
// Each sweeps a register tile of activation rows × packed weight panels along k, so every weight
// load serves all the tile's rows, and no operand is padded beyond its packing. The naive twins are
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

// Both passes vectorise (no libm call per value, no ordered max): the peak in 16 lanes (max is
// exact in any order), and the rounding by adding and taking off 1.5 · 2²³, which rounds to the
// nearest integer, ties to even, exactly as lrintf does for |v| ≤ 127 (the default rounding mode).
DC_CLONES
void dc_quantize_rows(const float *x, size_t m, size_t k, size_t lda, int8_t *q, float *scale) {
    const float magic = 12582912.0f;  // 1.5 · 2²³
    for (size_t i = 0; i < m; i++) {
        const float *row = x + i * k;
        float lanes[16] = {0};
        const size_t vector_k = k & ~(size_t)15;
        for (size_t c = 0; c < vector_k; c += 16) {
            for (int l = 0; l < 16; l++) {
                const float a = fabsf(row[c + l]);
                lanes[l] = a > lanes[l] ? a : lanes[l];
            }
        }
        float peak = 0;
        for (int l = 0; l < 16; l++) peak = lanes[l] > peak ? lanes[l] : peak;
        for (size_t c = vector_k; c < k; c++) {
            const float a = fabsf(row[c]);
            peak = a > peak ? a : peak;
        }
        const float s = peak / 127.0f;
        const float inv = peak > 0 ? 127.0f / peak : 0.0f;
        for (size_t c = 0; c < k; c++) {
            const float v = row[c] * inv;  // |v| ≤ 127
            q[i * lda + c] = (int8_t)(int32_t)((v + magic) - magic);
        }
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
// Bytes ahead of the weight stream the tiles prefetch (see DC_Q8_PREFETCH).
#define DC_BF16_PREFETCH 4096
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
            for (int p = 0; p < NP; p++) {                                                                    \
                const uint16_t *at = wp + (p * groups + g) * 32;                                              \
                b[p] = _mm512_loadu_si512((const void *)at);                                                  \
                _mm_prefetch((const char *)at + DC_BF16_PREFETCH, _MM_HINT_T0);                               \
            }                                                                                                 \
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
DC_BF16_TILE(3, 1)
DC_BF16_TILE(2, 1)
DC_BF16_TILE(1, 1)

DC_BF16_TARGET
void dc_gemm_bf16dot(const uint16_t *a, size_t lda, size_t m, const uint16_t *wp, size_t n, size_t k, size_t panel_begin,
                     size_t panel_end, float *c, size_t ldc) {
    const size_t groups = (k + 1) / 2;
    for (size_t pnl = panel_begin; pnl < panel_end;) {
        // A few decode rows: one panel at a time (one weight stream), every row against each load.
        if (m <= 8) {
            const uint16_t *w = wp + pnl * groups * 32;
            const size_t col = pnl * 16, ncols = n - col < 16 ? n - col : 16;
            size_t i = 0;
            if (m == 8) dc_bf16_tile_8_1(a, lda, w, groups, ncols, c + col, ldc), i = 8;
            for (; i + 4 <= m; i += 4) dc_bf16_tile_4_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc);
            switch (m - i) {
            case 3: dc_bf16_tile_3_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc); break;
            case 2: dc_bf16_tile_2_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc); break;
            case 1: dc_bf16_tile_1_1(a + i * lda, lda, w, groups, ncols, c + i * ldc + col, ldc); break;
            }
            pnl += 1;
            continue;
        }
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
// Four kernels share the packed layout and give the same integers (exact sums): each sweeps a
// register tile of up to 8 (AVX-512) or 4 activation rows against one load of each weight group,
// so a batch of decode rows reads every weight byte once. Operands are in [−127, 127] (what
// dc_quantize_rows produces), which the AVX2 kernel's 16-bit pair sums rely on.

DC_CLONES
void dc_int8_row_sums(const int8_t *w, size_t n, size_t k, int32_t *sums) {
    for (size_t j = 0; j < n; j++) {
        int32_t s = 0;
        for (size_t p = 0; p < k; p++) s += w[j * k + p];
        sums[j] = s;
    }
}

// Bytes ahead of the weight stream the tiles prefetch: decode streams every weight from memory
// once, and with several rows per tile the core otherwise stalls between the streams' misses.
#define DC_Q8_PREFETCH 4096

// The row tiles of one kernel over the panels [panel_begin, panel_end), PANELS (1 or 2) at a time,
// WIDEST (8 or 4) rows at a time and then the rest; TILE(rows, panels) calls a tile, TILE8(panels)
// the 8-row one (never reached where WIDEST is 4). Two panels per tile only for more than 8 rows
// (prefill: half the activation broadcasts per product); a few decode rows stream one panel at a
// time, which keeps one weight stream in flight and measured 1.3× faster from memory.
#define DC_Q8_NO_TILE8(NP) (void)0
#define DC_Q8_DRIVER(NAME, TARGET, TILE, TILE8, PANELS, WIDEST)                                                  \
    TARGET static void NAME(const int8_t *a, size_t lda, size_t m, const int8_t *wp, const int32_t *wsum, size_t n, \
                            size_t k, size_t panel_begin, size_t panel_end, int32_t *c, size_t ldc) {    \
        const size_t groups = (k + 3) / 4;                                                               \
        for (size_t pnl = panel_begin; pnl < panel_end;) {                                               \
            const size_t np = PANELS == 2 && m > 8 && pnl + 1 < panel_end ? 2 : 1;                       \
            const int8_t *w = wp + pnl * groups * 64;                                                    \
            const size_t col = pnl * 16, ncols = n - col < 16 * np ? n - col : 16 * np;                  \
            const int32_t *s = wsum + col;                                                               \
            (void)s;                                                                                     \
            for (size_t i = 0; i < m;) {                                                                 \
                const size_t left = m - i;                                                               \
                const size_t rows = left >= WIDEST ? WIDEST : (left >= 4 ? 4 : left);                    \
                const int8_t *ai = a + i * lda;                                                          \
                int32_t *ci = c + i * ldc + col;                                                         \
                if (np == 2) {                                                                           \
                    switch (rows) {                                                                      \
                    case 8: TILE8(2); break;                                                            \
                    case 4: TILE(4, 2); break;                                                           \
                    case 3: TILE(3, 2); break;                                                           \
                    case 2: TILE(2, 2); break;                                                           \
                    default: TILE(1, 2); break;                                                          \
                    }                                                                                    \
                } else {                                                                                 \
                    switch (rows) {                                                                      \
                    case 8: TILE8(1); break;                                                            \
                    case 4: TILE(4, 1); break;                                                           \
                    case 3: TILE(3, 1); break;                                                           \
                    case 2: TILE(2, 1); break;                                                           \
                    default: TILE(1, 1); break;                                                          \
                    }                                                                                    \
                }                                                                                        \
                i += rows;                                                                               \
            }                                                                                            \
            pnl += np;                                                                                   \
        }                                                                                                \
    }

#if DC_X86
// The four bytes a[row, 4g ..< 4g + 4] as one int32 (to broadcast).
#define DC_Q8_QUAD(a, lda, i, g) ({ int32_t quad_; memcpy(&quad_, (a) + (i) * (lda) + 4 * (g), sizeof quad_); quad_; })

// c[i, j] − 128 · wsum[j] for the ncols ≤ 16 columns of one panel half (the VNNI offset undone).
static inline void dc_q8_store16(const int32_t *acc, const int32_t *wsum, size_t ncols, int32_t *c) {
    for (size_t j = 0; j < ncols; j++) c[j] = acc[j] - wsum[j] * 128;
}

// MARK: AVX-512 VNNI (zmm): 16 outputs per instruction, up to 8 rows × 2 panels
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
            for (int p = 0; p < NP; p++) {                                                                    \
                const int8_t *at = wp + (p * groups + g) * 64;                                                \
                b[p] = _mm512_loadu_si512((const void *)at);                                                  \
                _mm_prefetch((const char *)at + DC_Q8_PREFETCH, _MM_HINT_T0);                                 \
            }                                                                                                 \
            for (int i = 0; i < MR; i++) {                                                                    \
                const __m512i av = _mm512_xor_si512(_mm512_set1_epi32(DC_Q8_QUAD(a, lda, i, g)), offset);     \
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
DC_Q8_TILE(3, 2)
DC_Q8_TILE(2, 2)
DC_Q8_TILE(1, 2)
DC_Q8_TILE(8, 1)
DC_Q8_TILE(4, 1)
DC_Q8_TILE(3, 1)
DC_Q8_TILE(2, 1)
DC_Q8_TILE(1, 1)
#define DC_Q8_CALL_512(MR, NP) dc_q8_tile_##MR##_##NP(ai, lda, w, groups, s, ncols, ci, ldc)
#define DC_Q8_CALL_512_8(NP) DC_Q8_CALL_512(8, NP)
DC_Q8_DRIVER(dc_gemm_q8_vnni512, DC_VNNI_TARGET, DC_Q8_CALL_512, DC_Q8_CALL_512_8, 2, 8)

// MARK: AVX-VNNI (VEX, ymm): 8 outputs per instruction, up to 4 rows × one panel (16 registers)
#define DC_AVXVNNI_TARGET __attribute__((target("avx2,avxvnni")))

#define DC_Q8_TILE_AVXVNNI(MR)                                                                                \
    DC_AVXVNNI_TARGET __attribute__((always_inline)) static inline void dc_q8_avxvnni_tile_##MR(             \
        const int8_t *a, size_t lda, const int8_t *wp, size_t groups, const int32_t *wsum, size_t ncols, int32_t *c, \
        size_t ldc) {                                                                                         \
        /* One row alone would wait on each accumulator's latency: even and odd groups sum apart. */          \
        enum { CHAINS = MR == 1 ? 2 : 1 };                                                                   \
        __m256i acc[MR][CHAINS][2];                                                                           \
        for (int i = 0; i < MR; i++)                                                                          \
            for (int u = 0; u < CHAINS; u++) acc[i][u][0] = acc[i][u][1] = _mm256_setzero_si256();           \
        const __m256i offset = _mm256_set1_epi8((char)0x80);                                                  \
        size_t g = 0;                                                                                         \
        for (; g + CHAINS <= groups; g += CHAINS) {                                                           \
            for (int u = 0; u < CHAINS; u++) {                                                                \
                const int8_t *at = wp + (g + u) * 64;                                                         \
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)at);                                   \
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(at + 32));                            \
                _mm_prefetch((const char *)at + DC_Q8_PREFETCH, _MM_HINT_T0);                                 \
                for (int i = 0; i < MR; i++) {                                                                \
                    const __m256i av = _mm256_xor_si256(_mm256_set1_epi32(DC_Q8_QUAD(a, lda, i, g + u)), offset); \
                    acc[i][u][0] = _mm256_dpbusd_avx_epi32(acc[i][u][0], av, b0);                             \
                    acc[i][u][1] = _mm256_dpbusd_avx_epi32(acc[i][u][1], av, b1);                             \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        for (; g < groups; g++) {                                                                             \
            const int8_t *at = wp + g * 64;                                                                   \
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)at);                                       \
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(at + 32));                                \
            for (int i = 0; i < MR; i++) {                                                                    \
                const __m256i av = _mm256_xor_si256(_mm256_set1_epi32(DC_Q8_QUAD(a, lda, i, g)), offset);     \
                acc[i][0][0] = _mm256_dpbusd_avx_epi32(acc[i][0][0], av, b0);                                 \
                acc[i][0][1] = _mm256_dpbusd_avx_epi32(acc[i][0][1], av, b1);                                 \
            }                                                                                                 \
        }                                                                                                     \
        for (int i = 0; i < MR; i++) {                                                                        \
            int32_t out[16];                                                                                  \
            __m256i lo = acc[i][0][0], hi = acc[i][0][1];                                                     \
            for (int u = 1; u < CHAINS; u++) {                                                                \
                lo = _mm256_add_epi32(lo, acc[i][u][0]);                                                      \
                hi = _mm256_add_epi32(hi, acc[i][u][1]);                                                      \
            }                                                                                                 \
            _mm256_storeu_si256((__m256i *)out, lo);                                                          \
            _mm256_storeu_si256((__m256i *)(out + 8), hi);                                                    \
            dc_q8_store16(out, wsum, ncols, c + i * ldc);                                                     \
        }                                                                                                     \
    }
DC_Q8_TILE_AVXVNNI(4)
DC_Q8_TILE_AVXVNNI(3)
DC_Q8_TILE_AVXVNNI(2)
DC_Q8_TILE_AVXVNNI(1)
#define DC_Q8_CALL_AVXVNNI(MR, NP) dc_q8_avxvnni_tile_##MR(ai, lda, w, groups, s, ncols, ci, ldc)
DC_Q8_DRIVER(dc_gemm_q8_avxvnni, DC_AVXVNNI_TARGET, DC_Q8_CALL_AVXVNNI, DC_Q8_NO_TILE8, 1, 4)

// MARK: AVX2 (no VNNI): vpmaddubsw on |a| and w · sign(a), then vpmaddwd by ones, up to 4 rows
// |a|, |w| ≤ 127, so a pair of products is at most 2 · 127² = 32258: the 16-bit sums never saturate.
#define DC_AVX2_TARGET __attribute__((target("avx2")))

#define DC_Q8_TILE_AVX2(MR)                                                                                   \
    DC_AVX2_TARGET __attribute__((always_inline)) static inline void dc_q8_avx2_tile_##MR(                   \
        const int8_t *a, size_t lda, const int8_t *wp, size_t groups, size_t ncols, int32_t *c, size_t ldc) { \
        __m256i acc[MR][2];                                                                                   \
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();                         \
        const __m256i ones = _mm256_set1_epi16(1);                                                            \
        for (size_t g = 0; g < groups; g++) {                                                                 \
            const int8_t *at = wp + g * 64;                                                                   \
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)at);                                       \
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(at + 32));                                \
            _mm_prefetch((const char *)at + DC_Q8_PREFETCH, _MM_HINT_T0);                                     \
            for (int i = 0; i < MR; i++) {                                                                    \
                const __m256i av = _mm256_set1_epi32(DC_Q8_QUAD(a, lda, i, g));                               \
                const __m256i magnitude = _mm256_abs_epi8(av);                                                \
                const __m256i p0 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b0, av));                 \
                const __m256i p1 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b1, av));                 \
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));                         \
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));                         \
            }                                                                                                 \
        }                                                                                                     \
        for (int i = 0; i < MR; i++) {                                                                        \
            int32_t out[16];                                                                                  \
            _mm256_storeu_si256((__m256i *)out, acc[i][0]);                                                   \
            _mm256_storeu_si256((__m256i *)(out + 8), acc[i][1]);                                             \
            memcpy(c + i * ldc, out, ncols * sizeof(int32_t));                                                \
        }                                                                                                     \
    }
DC_Q8_TILE_AVX2(4)
DC_Q8_TILE_AVX2(3)
DC_Q8_TILE_AVX2(2)
DC_Q8_TILE_AVX2(1)
#define DC_Q8_CALL_AVX2(MR, NP) dc_q8_avx2_tile_##MR(ai, lda, w, groups, ncols, ci, ldc)
DC_Q8_DRIVER(dc_gemm_q8_avx2, DC_AVX2_TARGET, DC_Q8_CALL_AVX2, DC_Q8_NO_TILE8, 1, 4)
#endif

// MARK: baseline C: the same tiles as plain loops (up to 4 rows per read of a weight group)
#define DC_Q8_TILE_C(MR)                                                                                      \
    static inline void dc_q8_c_tile_##MR(const int8_t *a, size_t lda, const int8_t *wp, size_t groups, size_t ncols, \
                                         int32_t *c, size_t ldc) {                                            \
        int32_t acc[MR][16] = {{0}};                                                                          \
        for (size_t g = 0; g < groups; g++) {                                                                 \
            const int8_t *w = wp + g * 64;                                                                    \
            for (int i = 0; i < MR; i++) {                                                                    \
                const int8_t *x = a + i * lda + 4 * g;                                                        \
                for (int r = 0; r < 16; r++)                                                                  \
                    for (int t = 0; t < 4; t++) acc[i][r] += (int16_t)x[t] * (int16_t)w[r * 4 + t];           \
            }                                                                                                 \
        }                                                                                                     \
        for (int i = 0; i < MR; i++) memcpy(c + i * ldc, acc[i], ncols * sizeof(int32_t));                   \
    }
DC_Q8_TILE_C(4)
DC_Q8_TILE_C(3)
DC_Q8_TILE_C(2)
DC_Q8_TILE_C(1)
#define DC_Q8_CALL_C(MR, NP) dc_q8_c_tile_##MR(ai, lda, w, groups, ncols, ci, ldc)
#define DC_NO_TARGET
DC_Q8_DRIVER(dc_gemm_q8_c, DC_NO_TARGET, DC_Q8_CALL_C, DC_Q8_NO_TILE8, 1, 4)

int dc_int8_kernel_supported(int kernel) {
    if (kernel == DC_INT8_C) return 1;
#if DC_X86
    __builtin_cpu_init();
    switch (kernel) {
    case DC_INT8_AVX2: return __builtin_cpu_supports("avx2");
    case DC_INT8_AVXVNNI: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    case DC_INT8_AVX512VNNI: return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    }
#endif
    return 0;
}

int dc_cpu_int8_kernel(void) {
    for (int kernel = DC_INT8_AVX512VNNI; kernel > DC_INT8_C; kernel--)
        if (dc_int8_kernel_supported(kernel)) return kernel;
    return DC_INT8_C;
}

void dc_gemm_q8_int(const int8_t *a, size_t lda, size_t m, const int8_t *wp, const int32_t *wsum, size_t n, size_t k,
                    size_t panel_begin, size_t panel_end, int32_t *c, size_t ldc, int kernel) {
    switch (dc_int8_kernel_supported(kernel) ? kernel : DC_INT8_C) {
#if DC_X86
    case DC_INT8_AVX512VNNI: dc_gemm_q8_vnni512(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, c, ldc); return;
    case DC_INT8_AVXVNNI: dc_gemm_q8_avxvnni(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, c, ldc); return;
    case DC_INT8_AVX2: dc_gemm_q8_avx2(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, c, ldc); return;
#endif
    default: dc_gemm_q8_c(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, c, ldc); return;
    }
}

void dc_gemm_q8(const int8_t *a, size_t lda, const float *ascale, size_t m, const int8_t *wp, const float *wscale,
                const int32_t *wsum, size_t n, size_t k, size_t panel_begin, size_t panel_end, int32_t *scratch, float *c,
                size_t ldc, int kernel) {
    // scratch: int32 [m, n] (only this call's columns are touched), then scaled into c.
    dc_gemm_q8_int(a, lda, m, wp, wsum, n, k, panel_begin, panel_end, scratch, n, kernel);
    const size_t j0 = panel_begin * 16, j1 = panel_end * 16 < n ? panel_end * 16 : n;
    for (size_t i = 0; i < m; i++)
        for (size_t j = j0; j < j1; j++) c[i * ldc + j] = (float)scratch[i * n + j] * (ascale[i] * wscale[j]);
}
