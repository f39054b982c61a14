/*
 * test_udp_rate.c - gateway/udp_rate.h: a token bucket per source address
 * in a table of fixed size. Time is the test's (now_us is an argument), so
 * refills are exact and nothing sleeps.
 */
#include "udp_rate.h"

#include "gw.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* The key of 10.x.y.z for a number n. */
static void key_of(unsigned n, unsigned char key[UDP_RATE_KEY])
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x0a000000u | (n & 0xffffffu));
    udp_rate_key((struct sockaddr *)&a, key);
}

/* How many of n datagrams at now_us the bucket of key lets through. */
static unsigned allowed(struct udp_rate *r, const unsigned char *key, unsigned n, uint64_t now_us)
{
    unsigned yes = 0;
    for (unsigned i = 0; i < n; i++)
        yes += udp_rate_allow(r, key, now_us);
    return yes;
}

static void test_keys(void)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr_in v4b = {.sin_family = AF_INET, .sin_port = htons(2)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    unsigned char k1[UDP_RATE_KEY], k2[UDP_RATE_KEY], k3[UDP_RATE_KEY];

    inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
    inet_pton(AF_INET, "192.0.2.7", &v4b.sin_addr);
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &v6.sin6_addr);
    ok(udp_rate_key((struct sockaddr *)&v4, k1), "IPv4 has a key");
    ok(udp_rate_key((struct sockaddr *)&v4b, k2), "IPv4 on another port has a key");
    ok(memcmp(k1, k2, UDP_RATE_KEY) == 0, "the port is not part of the key");
    ok(udp_rate_key((struct sockaddr *)&v6, k3), "IPv6 has a key");
    ok(memcmp(k1, k3, UDP_RATE_KEY) == 0, "IPv4 and its IPv4-mapped IPv6 form: one key");
    inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
    udp_rate_key((struct sockaddr *)&v6, k3);
    ok(memcmp(k1, k3, UDP_RATE_KEY) != 0, "another IPv6 address: another key");
    unsigned char k4[UDP_RATE_KEY];
    inet_pton(AF_INET6, "2001:db8::1:2:3:8", &v6.sin6_addr);
    udp_rate_key((struct sockaddr *)&v6, k4);
    ok(memcmp(k3, k4, UDP_RATE_KEY) == 0, "IPv6 in the same /64: one client, one key");
    inet_pton(AF_INET6, "2001:db8:0:1::7", &v6.sin6_addr);
    udp_rate_key((struct sockaddr *)&v6, k4);
    ok(memcmp(k3, k4, UDP_RATE_KEY) != 0, "another /64: another key");
    inet_pton(AF_INET6, "fe80::1", &v6.sin6_addr);
    udp_rate_key((struct sockaddr *)&v6, k3);
    inet_pton(AF_INET6, "fe80::2", &v6.sin6_addr);
    udp_rate_key((struct sockaddr *)&v6, k4);
    ok(memcmp(k3, k4, UDP_RATE_KEY) != 0,
       "link-local addresses stay whole (one /64 is every host)");
    ok(!udp_rate_key((struct sockaddr *)&un, k3), "AF_UNIX has no key");
}

static void test_bucket(void)
{
    struct udp_rate *r = udp_rate_new(10, 5, 64);
    unsigned char a[UDP_RATE_KEY], b[UDP_RATE_KEY];
    uint64_t t = 1000000;

    key_of(1, a);
    key_of(2, b);
    is_uint(allowed(r, a, 20, t), 5, "a new source gets its burst of 5, then nothing");
    is_uint(allowed(r, b, 20, t), 5, "another source is not held back by the first");
    is_uint(allowed(r, a, 5, t + 99999), 0, "99.999 ms at 10/s: not a whole token yet");
    is_uint(allowed(r, a, 5, t + 100000), 1, "100 ms at 10/s: one token");
    is_uint(allowed(r, a, 5, t + 350000), 2, "250 ms more: two tokens (and half of one kept)");
    is_uint(allowed(r, a, 5, t + 400000), 1, "50 ms more: the half token made whole");
    is_uint(allowed(r, a, 20, t + 100000000), 5, "a long silence refills only up to the burst");
    is_uint(allowed(r, a, 1, t), 0, "a clock that goes back gives nothing");
    is_uint(udp_rate_used(r), 2, "two sources held");
    udp_rate_free(r);

    r = udp_rate_new(0, 5, 64);
    is_uint(allowed(r, a, 1000, t), 1000, "rate 0: no limit");
    is_uint(udp_rate_used(r), 0, "rate 0: nothing kept");
    udp_rate_free(r);

    r = udp_rate_new(1000000, 1, 1);
    is_uint(allowed(r, a, 3, t), 1, "burst 1: one at a time");
    is_uint(allowed(r, a, 3, t + 1), 1, "1 µs at 1,000,000/s: the next one");
    udp_rate_free(r);
}

/*
 * Memory is fixed whatever the number of sources; a flooder that keeps
 * sending is not pushed out by many others each seen once, and stays held.
 */
static void test_bounded(void)
{
    struct udp_rate *r = udp_rate_new(10, 5, 1024);
    unsigned char flooder[UDP_RATE_KEY], k[UDP_RATE_KEY];
    size_t cap = udp_rate_capacity(r);
    unsigned let = 0;
    uint64_t t = 1000000;

    ok(cap >= 1024 && cap <= 2048, "capacity %zu for 1024 sources", cap);
    key_of(0xffffff, flooder);
    is_uint(allowed(r, flooder, 10, t), 5, "the flooder's burst");
    /* 100,000 one-off sources, the flooder sending between each (1 µs apart). */
    for (unsigned n = 0; n < 100000; n++) {
        key_of(n, k);
        t++;
        if (!udp_rate_allow(r, k, t))
            let += 1000000; /* a fresh source must get its first datagram */
        let += udp_rate_allow(r, flooder, t);
    }
    is_uint(udp_rate_used(r), cap, "the table is full and no larger: %zu", cap);
    /* 100 ms went by: one token at 10/s. */
    is_uint(let, 1, "the flooder got one datagram in 100,000 tries over 100 ms (its refill)");
    udp_rate_free(r);
}

int main(void)
{
    test_keys();
    test_bucket();
    test_bounded();
    return done_testing();
}
