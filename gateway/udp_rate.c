/*
 * udp_rate.c - token buckets per source address; see udp_rate.h.
 */
#include "udp_rate.h"

#include "gw.h"
#include "source_table.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Ways per set: a new address pushes out the stalest of these. */
#define WAYS 4
/* Tokens are counted in millionths, so that a refill of rate per second is exact per µs. */
#define ONE  1000000u

struct entry {
    unsigned char key[UDP_RATE_KEY];
    bool used;
    uint64_t tokens;  /* millionths of a token */
    uint64_t last_us; /* the last datagram: when the bucket was refilled, and how stale it is */
};

struct udp_rate {
    unsigned rate, burst;
    size_t nsets; /* a power of two */
    size_t used;
    uint64_t k0, k1; /* the hash key: a sender cannot aim its addresses at one set */
    struct entry *e; /* nsets * WAYS */
};

struct udp_rate *udp_rate_new(unsigned rate, unsigned burst, size_t sources)
{
    struct udp_rate *r = gw_xcalloc(1, sizeof(*r));
    uint64_t k[2];

    r->rate = rate;
    r->burst = burst ? burst : 1;
    if (!rate)
        return r;
    r->nsets = 1;
    while (r->nsets * WAYS < sources)
        r->nsets *= 2;
    r->e = gw_xcalloc(r->nsets * WAYS, sizeof(*r->e));
    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)r;
        k[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4fu ^ k[0];
    }
    r->k0 = k[0];
    r->k1 = k[1];
    return r;
}

void udp_rate_free(struct udp_rate *r)
{
    if (!r)
        return;
    free(r->e);
    free(r);
}

bool udp_rate_key(const struct sockaddr *sa, unsigned char key[UDP_RATE_KEY])
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(key, &a->sin6_addr, UDP_RATE_KEY);
        if (source_v6_by_prefix(&a->sin6_addr))
            memset(key + 8, 0, UDP_RATE_KEY - 8); /* one client: its /64 */
        return true;
    }
    return false;
}

/* A 64-bit finalizer (splitmix64's): every input bit moves every output bit. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return x;
}

/* The set of a key: its 16 bytes mixed with the table's random key. */
static size_t set_of(const struct udp_rate *r, const unsigned char key[UDP_RATE_KEY])
{
    uint64_t w0, w1;

    memcpy(&w0, key, 8);
    memcpy(&w1, key + 8, 8);
    return (size_t)mix(mix(w0 ^ r->k0) ^ w1 ^ r->k1) & (r->nsets - 1);
}

bool udp_rate_allow(struct udp_rate *r, const unsigned char key[UDP_RATE_KEY], uint64_t now_us)
{
    struct entry *set, *e = NULL, *victim;
    uint64_t full = (uint64_t)r->burst * ONE;

    if (!r->rate)
        return true;
    set = &r->e[set_of(r, key) * WAYS];
    victim = &set[0];
    for (size_t i = 0; i < WAYS; i++) {
        if (set[i].used && memcmp(set[i].key, key, UDP_RATE_KEY) == 0) {
            e = &set[i];
            break;
        }
        /* A free way, else the one seen longest ago. */
        if (victim->used && (!set[i].used || set[i].last_us < victim->last_us))
            victim = &set[i];
    }
    if (!e) {
        e = victim;
        if (!e->used)
            r->used++;
        memcpy(e->key, key, UDP_RATE_KEY);
        e->used = true;
        e->tokens = full;
    } else if (now_us > e->last_us) {
        /* Compared before multiplying: a long silence cannot overflow. */
        uint64_t idle = now_us - e->last_us;
        e->tokens = idle >= (full - e->tokens) / r->rate + 1 ? full : e->tokens + idle * r->rate;
        if (e->tokens > full)
            e->tokens = full;
    }
    e->last_us = now_us;
    if (e->tokens < ONE)
        return false;
    e->tokens -= ONE;
    return true;
}

size_t udp_rate_used(const struct udp_rate *r)
{
    return r->used;
}

size_t udp_rate_capacity(const struct udp_rate *r)
{
    return r->nsets * WAYS;
}
