#ifndef DENSECAP_COPENBLAS_SHIM_H
#define DENSECAP_COPENBLAS_SHIM_H
#include <cblas.h>
#include <limits.h>
#include <malloc.h>

// glibc serves blocks above its mmap threshold (at most 32 MiB when adjusted dynamically) with
// fresh mappings, so every large GEMM output would fault in and zero new pages. Raising the
// threshold and never trimming keeps freed activations in the heap for the next layer.
static inline void dc_keep_large_allocations(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
}
#endif
