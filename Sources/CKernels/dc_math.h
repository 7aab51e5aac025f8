// Shared by the kernel files; not part of the module's public header.
#ifndef DENSECAP_DC_MATH_H
#define DENSECAP_DC_MATH_H
#include <stdint.h>
#include <string.h>

// e^x for the activations and softmax: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2,
// then Cephes' degree-6 polynomial (about 1 ulp), scaled by 2^n built in the exponent bits.
// Branch-free, so the kernels' loops vectorise (libm's expf is a call per element).
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

#endif
