#ifndef DENSECAP_CCAIRO_SHIM_H
#define DENSECAP_CCAIRO_SHIM_H
#include <cairo.h>
#endif
