/*
 * name_hash.c - see name_hash.h. SipHash (Aumasson and Bernstein, 2012)
 * with one compression round and three finalization rounds, as redis and
 * Rust's standard hash maps use it for tables keyed by client input.
 */
#include "name_hash.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t key[2];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void draw_key(void)
{
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        /* No entropy to be had (a very early boot): the clock, still not a client's to guess. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
        key[1] = (uint64_t)(uintptr_t)&ts * 0xc2b2ae3d27d4eb4fu ^ key[0];
    }
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* Little-endian 64-bit load, whatever the host. */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t name_hash_keyed(const uint64_t k[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575u ^ k[0], v1 = 0x646f72616e646f6du ^ k[1];
    uint64_t v2 = 0x6c7967656e657261u ^ k[0], v3 = 0x7465646279746573u ^ k[1];
    uint64_t b = (uint64_t)len << 56, m;
    size_t whole = len - len % 8;

    for (size_t i = 0; i < whole; i += 8) {
        m = load64(p + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t name_hash(const char *s)
{
    return name_hash_n(s, strlen(s));
}

uint64_t name_hash_n(const char *s, size_t len)
{
    pthread_once(&key_once, draw_key);
    return name_hash_keyed(key, s, len);
}
