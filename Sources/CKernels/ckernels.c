// Hot loops that need the CPU's vector units. Swift compiles for baseline x86-64 (SSE2, no FMA),
// and one binary must run on any x86-64, so these are C with target_clones: the dynamic loader
// picks the AVX-512, AVX2+FMA or baseline clone once, by CPUID (GNU ifunc). The loops are written
// lane by lane (16 independent accumulators) so the compiler vectorises them without reordering
// any sum; each clone computes the same products, rounding may differ by FMA contraction only.
#include "ckernels.h"
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

// e^x for the activations and softmax: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2,
// then Cephes' degree-6 polynomial (about 1 ulp), scaled by 2^n built in the exponent bits.
// Branch-free, so the loops below vectorise (libm's expf is a call per element).
// Below −87.3 the result is 0 (e^x is under 2^−126 there, and e^−∞ must be exactly 0 for masked
// softmax entries); above 88.3 it is clamped, which would overflow.
static inline float dc_exp(float input) {
    float x = input < -87.3f ? -87.3f : input;
    x = x > 88.3f ? 88.3f : x;
    const float shifter = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return input < -87.3f ? 0.0f : p * scale;
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
