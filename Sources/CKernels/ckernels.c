// Hot loops that need the CPU's vector units. Swift compiles for baseline x86-64 (SSE2, no FMA),
// and one binary must run on any x86-64, so these are C with target_clones: the dynamic loader
// picks the AVX-512, AVX2+FMA or baseline clone once, by CPUID (GNU ifunc). The loops are written
// lane by lane (16 independent accumulators) so the compiler vectorises them without reordering
// any sum; each clone computes the same products, rounding may differ by FMA contraction only.
#include "ckernels.h"
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
