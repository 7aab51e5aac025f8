#ifndef DENSECAP_CKERNELS_H
#define DENSECAP_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

// out[j] = sum_i x[i] * bf16(w[j * cols + i]) for rows j in [begin, end).
void dc_gemv_bf16(const float *x, const uint16_t *w, size_t begin, size_t end, size_t cols, float *out);

// out[i] = bf16(in[i]) widened to float, for i in [0, n).
void dc_widen_bf16(const uint16_t *in, float *out, size_t n);
#endif
