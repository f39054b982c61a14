/*
 * fuzz_util.h - what the fuzz targets share: the invariant check that
 * aborts, so that libFuzzer saves the input that broke it.
 *
 * Header-only; included by each fuzz_*.c.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* An invariant: on failure print where and what, then abort (a crash to libFuzzer). */
#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed: %s: %s (%s:%d)\n", (what), #cond, __FILE__,    \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
