/*
 * name_hash.h - the hash of a channel name for the gateway's tables (the
 * hub's channels, the writer's seq cache): SipHash-1-3 under a key drawn at
 * random once per process, so that no client can choose names that all
 * fall in one bucket and make every lookup walk them (hash flooding, as
 * with a plain unkeyed hash such as FNV, whose low bits a client can aim).
 *
 * Safe from any thread: the key is drawn once, on first use.
 */
#ifndef GW_NAME_HASH_H
#define GW_NAME_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The keyed hash of the NUL-terminated name s. */
uint64_t name_hash(const char *s);
/* The same of the len bytes at s (a name inside a longer line). */
uint64_t name_hash_n(const char *s, size_t len);

/* SipHash-1-3 of (p, len) under key k, for tests against the reference vectors' shape. */
uint64_t name_hash_keyed(const uint64_t k[2], const void *p, size_t len);

#endif
