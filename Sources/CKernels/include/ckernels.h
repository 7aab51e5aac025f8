#ifndef DENSECAP_CKERNELS_H
#define DENSECAP_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

// out[j] = sum_i x[i] * bf16(w[j * cols + i]) for rows j in [begin, end).
void dc_gemv_bf16(const float *x, const uint16_t *w, size_t begin, size_t end, size_t cols, float *out);

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
#endif
