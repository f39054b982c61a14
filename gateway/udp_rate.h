/*
 * udp_rate.h - a token bucket per source address, in a table of bounded
 * size: how the UDP front keeps one sender from taking more than its share.
 *
 * Each source address (the port does not count: a sender can pick any)
 * holds up to burst tokens, refilled at rate per second; a datagram takes
 * one, and a datagram that finds none is over the rate. The table is a
 * fixed array of small sets (set-associative, like a CPU cache): an address
 * hashes, with a key drawn at start, to one set, and a new address takes
 * the set's free way or the one seen longest ago. Memory is fixed whatever
 * the number of senders; a sender pushed out comes back with a full bucket,
 * which needs the whole set to be busier than it, so a steady flooder stays
 * held.
 *
 * Pure apart from the random key; depends on libc. Loop thread only (no
 * locks).
 */
#ifndef GW_UDP_RATE_H
#define GW_UDP_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A source address as the table keys it: IPv6 bytes, IPv4 as ::ffff:a.b.c.d. */
#define UDP_RATE_KEY 16

struct udp_rate;

/*
 * A table remembering about `sources` addresses (rounded up to a whole
 * number of sets), each allowed rate datagrams per second and burst at once.
 * rate 0: no limit (udp_rate_allow always says yes, and nothing is kept).
 */
struct udp_rate *udp_rate_new(unsigned rate, unsigned burst, size_t sources);
/* NULL is a no-op. */
void udp_rate_free(struct udp_rate *r);

/* The key of sa (AF_INET or AF_INET6: an IPv6 client by its /64, as source_of_peer); false for
 * another family. */
bool udp_rate_key(const struct sockaddr *sa, unsigned char key[UDP_RATE_KEY]);

/* Takes a token from key's bucket at now_us (CLOCK_MONOTONIC µs): false when it has none. */
bool udp_rate_allow(struct udp_rate *r, const unsigned char key[UDP_RATE_KEY], uint64_t now_us);

/* Addresses the table holds now, and at most. */
size_t udp_rate_used(const struct udp_rate *r);
size_t udp_rate_capacity(const struct udp_rate *r);

#endif
