/*
 * sio_proto.c - Engine.IO and Socket.IO framing; see sio_proto.h.
 *
 * The header grammar is socket.io-parser's: <type>[<attachments>-][<nsp>,][<id>][<json>].
 */
#include "sio_proto.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Ack ids are JavaScript numbers: 15 digits are always exact. */
#define ID_DIGITS_MAX 15

bool eio_payload_next(const char *p, size_t len, size_t *off, const char **pkt, size_t *pkt_len)
{
    if (*off > len || (*off == len && (len == 0 || p[len - 1] != EIO_SEP)))
        return false;
    const char *start = p + *off;
    const char *sep = memchr(start, EIO_SEP, len - *off);
    size_t n = sep ? (size_t)(sep - start) : len - *off;

    *pkt = start;
    *pkt_len = n;
    *off += n + 1; /* past the separator, or one past the end */
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

enum gw_err sio_packet_parse(const char *p, size_t len, struct sio_packet *out, char why[GW_ERRLEN])
{
    size_t i = 1;

    memset(out, 0, sizeof(*out));
    out->nsp = "/";
    out->nsp_len = 1;
    if (!len || p[0] < '0' || p[0] > '6') {
        snprintf(why, GW_ERRLEN,
                 "not a Socket.IO packet: it starts with a type from 0 to 6 (0 CONNECT, 1 "
                 "DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 and 6 binary)");
        return GW_E_PARAM;
    }
    out->type = (enum sio_type)(p[0] - '0');
    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        unsigned n = 0;
        size_t start = i;
        while (i < len && is_digit(p[i]) && i - start < 6)
            n = n * 10 + (unsigned)(p[i++] - '0');
        if (i == start || i >= len || p[i] != '-') {
            snprintf(why, GW_ERRLEN,
                     "a binary Socket.IO packet starts with its number of attachments and '-'");
            return GW_E_PARAM;
        }
        out->attachments = n;
        i++;
    }
    if (i < len && p[i] == '/') {
        size_t start = i;
        while (i < len && p[i] != ',') {
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || i - start >= SIO_NSP_MAX) {
                snprintf(why, GW_ERRLEN, "a namespace is at most %d printable bytes, ended by ','",
                         SIO_NSP_MAX);
                return GW_E_PARAM;
            }
            i++;
        }
        out->nsp = p + start;
        out->nsp_len = i - start;
        if (i < len)
            i++; /* the ','; a namespace may also end the packet ("0/admin") */
    }
    if (i < len && is_digit(p[i])) {
        uint64_t id = 0;
        size_t start = i;
        while (i < len && is_digit(p[i])) {
            if (i - start >= ID_DIGITS_MAX) {
                snprintf(why, GW_ERRLEN, "an ack id is at most %d digits", ID_DIGITS_MAX);
                return GW_E_PARAM;
            }
            id = id * 10 + (uint64_t)(p[i++] - '0');
        }
        out->has_id = true;
        out->id = id;
    }
    out->data = p + i;
    out->data_len = len - i;
    return GW_OK;
}

bool sio_nsp_is_main(const char *nsp, size_t len)
{
    return len == 1 && nsp[0] == '/';
}

int eio_open_packet(char *out, size_t cap, const char *sid, bool upgrade, unsigned ping_interval_ms,
                    unsigned ping_timeout_ms, size_t max_payload)
{
    return snprintf(out, cap,
                    "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
                    "\"maxPayload\":%zu}",
                    sid, upgrade ? "\"websocket\"" : "", ping_interval_ms, ping_timeout_ms,
                    max_payload);
}

void eio_sid_new(char out[EIO_SID_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[15];

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        /* No entropy yet (early boot): the clock, unique enough for a process's sessions. */
        struct timespec ts;
        static uint64_t n;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (++n << 52);
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(x >> (8 * (i % 8))) ^ (unsigned char)(i * 37);
    }
    for (size_t i = 0, o = 0; i < sizeof(rnd); i += 3) {
        uint32_t v = (uint32_t)rnd[i] << 16 | (uint32_t)rnd[i + 1] << 8 | rnd[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    out[EIO_SID_LEN] = '\0';
}
