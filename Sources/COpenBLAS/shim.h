#ifndef DENSECAP_COPENBLAS_SHIM_H
#define DENSECAP_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
