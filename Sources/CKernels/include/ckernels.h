#ifndef DENSECAP_CKERNELS_H
#define DENSECAP_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

// out[j] = sum_i x[i] * bf16(w[j * cols + i]) for rows j in [begin, end).
void dc_gemv_bf16(const float *x, const uint16_t *w, size_t begin, size_t end, size_t cols, float *out);

// out[r, j] = Σ_i x[r, i] · w[j, i] for r < m, j in [begin, end): each weight row read once for all m
// rows (ldx, ldo: row strides); per row the same sums, in the same order, as dc_gemv_bf16.
void dc_gemv_bf16_rows(const float *x, size_t m, size_t ldx, const uint16_t *w, size_t begin, size_t end, size_t cols,
                       float *out, size_t ldo);
void dc_gemv_f32_rows(const float *x, size_t m, size_t ldx, const float *w, size_t begin, size_t end, size_t cols,
                      float *out, size_t ldo);

// out[i] = bf16(in[i]) widened to float, for i in [0, n).
void dc_widen_bf16(const uint16_t *in, float *out, size_t n);

// e^x, branch-free polynomial (about 1 ulp); 0 below −87.3, clamped above 88.3. The kernels below use it.
float dc_exp_scalar(float x);

// gate[i] = silu(gate[i]) · up[i] (SwiGLU), i in [0, n).
void dc_silu_mul(float *gate, const float *up, size_t n);

// x[i] = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) in place (GELU, tanh form).
void dc_gelu_tanh(float *x, size_t n);

// Softmax of row[0..<n] in place, max-subtracted; all −∞ gives the uniform distribution.
void dc_softmax(float *row, size_t n);

// OpenCV's 8-bit COLOR_RGB2HSV and BT.601 luma of n RGB pixels (rgb: [n, 3]) into the [n] planes
// hue (0…179), saturation, value and luma, exactly as EventSegmenter's `hsv`; histogram: [64]
// counts of luma >> 2 (overwritten). Returns the sum of the luma plane.
uint64_t dc_analyze_rgb(const uint8_t *rgb, size_t n, uint8_t *hue, uint8_t *saturation, uint8_t *value,
                        uint8_t *luma, uint32_t *histogram);

// MARK: fused attention (attention.c)
// Queries per block, keys per inner step, and the largest head dimension dc_attention_block takes.
#define DC_ATT_ROWS 8
#define DC_ATT_KEYS 32
#define DC_ATT_MAX_DIM 256

// Keys rounded up to DC_ATT_KEYS, and the head dimension rounded up to 32: the packed layouts' sizes.
size_t dc_attention_padded_keys(size_t keys);
size_t dc_attention_padded_dim(size_t d);

// Packs one key/value head: keys, values are `count` rows with row stride ld (head's d columns
// first); kt [padded_keys / DC_ATT_KEYS, d, DC_ATT_KEYS] is K transposed per block of keys, vp [padded_keys, padded_dim] is V; padding is zero.
void dc_attention_pack(const float *keys, const float *values, size_t ld, size_t count, size_t d, float *kt, float *vp);

// out[i, 0..<d] = softmax_j(scale · q_i · k_j) · v over keys j < (causal ? first_visible + i : keys)
// for the rows i < rows (≤ DC_ATT_ROWS) of one head; kt, vp from dc_attention_pack; d ≤ DC_ATT_MAX_DIM.
void dc_attention_block(const float *q, size_t ldq, size_t rows, const float *kt, const float *vp, size_t keys, size_t d,
                        size_t first_visible, int causal, float scale, float *out, size_t ldo);

// One query per head (the decode step): out[h, 0..<d] = softmax_j(scale · q_h · k_j) · v over the
// `count` keys, for heads [head_begin, head_end); head h reads key/value head h / group, at column
// (h / group) · d of rows with stride ld. q [heads, d]; scores: scratch [head_end − head_begin, count]
// (left holding the heads' softmax weights). Each head's result is the same whatever range holds it.
void dc_attention_decode(const float *q, const float *keys, const float *values, size_t count, size_t ld, size_t d,
                         size_t group, size_t head_begin, size_t head_end, float scale, float *scores, float *out);
// Its naive twin (plain loops, the same summation order): the fast kernel equals it exactly.
void dc_attention_decode_naive(const float *q, const float *keys, const float *values, size_t count, size_t ld, size_t d,
                               size_t group, size_t head_begin, size_t head_end, float scale, float *scores, float *out);

// MARK: reduced precision (lowprecision.c)
// Whether this CPU has native bf16 dot products (AVX512_BF16); dc_gemm_bf16dot needs them.
int dc_cpu_has_bf16_dot(void);
// The int8 kernels, in order of preference: AVX-512 VNNI (vpdpbusd zmm), AVX-VNNI (vpdpbusd ymm,
// VEX: Alder Lake, Zen 5 desktop), AVX2 (vpmaddubsw + vpmaddwd), baseline C. All give the same integers.
#define DC_INT8_C 0
#define DC_INT8_AVX2 1
#define DC_INT8_AVXVNNI 2
#define DC_INT8_AVX512VNNI 3
// The best int8 kernel this CPU runs.
int dc_cpu_int8_kernel(void);
// Whether this CPU runs `kernel` (DC_INT8_C always).
int dc_int8_kernel_supported(int kernel);

// Elements of a packed weight matrix [n, k] in groups of `group` k values (2: bf16, 4: int8):
// n rounded up to 16, k to the group.
size_t dc_packed_size(size_t n, size_t k, size_t group);
// Packs w [n, k] into panels of 16 rows: out[panel][g][16][G] = w[16·panel + r][G·g + t], zero-padded.
void dc_pack_bf16(const uint16_t *w, size_t n, size_t k, uint16_t *out);
void dc_pack_int8(const int8_t *w, size_t n, size_t k, int8_t *out);

// out[i, c] = x[i, c] rounded to bf16 (nearest, ties to even) for x [m, k]; out rows have lda ≥ k
// entries, zero past k.
void dc_round_bf16(const float *x, size_t m, size_t k, size_t lda, uint16_t *out);

// c[i, j] = Σ_p a[i, p] · w[j, p] in fp32 for i < m and the columns of panels [panel_begin,
// panel_end); a [m, lda] bf16 (lda even, zero past k), wp from dc_pack_bf16. Only where
// dc_cpu_has_bf16_dot().
void dc_gemm_bf16dot(const uint16_t *a, size_t lda, size_t m, const uint16_t *wp, size_t n, size_t k, size_t panel_begin,
                     size_t panel_end, float *c, size_t ldc);

// Symmetric per-row quantisation: scale[i] = max|x[i, :]| / 127, q[i, p] = round(x[i, p] / scale[i])
// (ties to even; 0 for an all-zero row). x [m, k]; q rows of lda ≥ k, zero past k.
void dc_quantize_rows(const float *x, size_t m, size_t k, size_t lda, int8_t *q, float *scale);

// sums[j] = Σ_p w[j, p] for w [n, k] (the VNNI kernel's offset correction).
void dc_int8_row_sums(const int8_t *w, size_t n, size_t k, int32_t *sums);

// int32 c[i, j] = Σ_p a[i, p] · w[j, p] exactly, for i < m and the columns of panels
// [panel_begin, panel_end) (row stride ldc). a [m, lda] int8 (lda a multiple of 4, zero past k),
// wp from dc_pack_int8, wsum from dc_int8_row_sums; every value in [−127, 127]. `kernel` is one of
// DC_INT8_*; one this CPU lacks runs the baseline C loop instead.
void dc_gemm_q8_int(const int8_t *a, size_t lda, size_t m, const int8_t *wp, const int32_t *wsum, size_t n, size_t k,
                    size_t panel_begin, size_t panel_end, int32_t *c, size_t ldc, int kernel);

// c[i, j] = ascale[i] · wscale[j] · Σ_p a[i, p] · w[j, p] for i < m and the columns of panels
// [panel_begin, panel_end): dc_gemm_q8_int into scratch int32 [m, n], scaled once.
void dc_gemm_q8(const int8_t *a, size_t lda, const float *ascale, size_t m, const int8_t *wp, const float *wscale,
                const int32_t *wsum, size_t n, size_t k, size_t panel_begin, size_t panel_end, int32_t *scratch, float *c,
                size_t ldc, int kernel);
#endif
