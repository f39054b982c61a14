/*
 * rng.h - a deterministic generator (xorshift64) for the unit tests'
 * property checks: each test keeps its own state, so a failure replays the
 * same inputs on every run and every machine.
 *
 * Header-only like tap.h.
 */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

/* The next value of *state, which must not be 0. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

#endif
