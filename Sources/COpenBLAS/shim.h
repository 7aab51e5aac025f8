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

// OpenBLAS (pthreads and OpenMP builds alike) starts its helper threads in a load-time constructor;
// each spins in sched_yield for about 2^28 cycles (0.1 s) before it sleeps, in every process,
// whether or not it ever multiplies a matrix. Shutting the pool down joins them at once; the next
// threaded BLAS call starts it again (exec_blas: `if (blas_server_avail == 0) blas_thread_init()`),
// which is what OpenBLAS's own fork handler relies on. Exported by the threaded libopenblas, not in
// cblas.h; weak, so a single-threaded (serial) OpenBLAS without it still loads, and nothing happens.
int blas_thread_shutdown_(void) __attribute__((weak));
static inline void dc_blas_park_threads(void) {
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}
#endif
