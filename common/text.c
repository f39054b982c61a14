/*
 * text.c - validation of untrusted text; see text.h.
 */
#include "text.h"

#include <string.h>

#include "model.h"

size_t text_utf8_seq(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    size_t need;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte first, C0/C1 overlong, > U+10FFFF */
    }
    if (len - 1 < need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    return need + 1;
}

bool text_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        /* ASCII runs are the common case: skip them without the decoder. */
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = text_utf8_seq(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

bool text_channel_valid(const char *s, size_t len)
{
    if (len == 0 || len > GW_CHANNEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool text_channel_dots(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

bool text_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* SWAR: the 0x80 bit of each byte of v that is zero. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t zero_bytes(uint64_t v)
{
    return (v - ONES) & ~v & HIGHS;
}

bool text_is_c1(const char *seq, size_t n)
{
    return n == 2 && (unsigned char)seq[0] == 0xc2 && (unsigned char)seq[1] <= 0x9f;
}

size_t text_json_plain_run(const char *s, size_t len)
{
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        /* >= 0x80, < 0x20, DEL, '"' or '\\' anywhere in the eight: finish byte by byte */
        if ((x & HIGHS) || zero_bytes(x & 0xe0e0e0e0e0e0e0e0ull) || zero_bytes(x ^ (ONES * '"')) ||
            zero_bytes(x ^ (ONES * '\\')) || zero_bytes(x ^ (ONES * 0x7f)))
            break;
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            break;
    }
    return i;
}

size_t text_json_len(const char *s, size_t len)
{
    size_t out = 2, i = 0;

    while (i < len) {
        size_t run = text_json_plain_run(s + i, len - i);
        out += run;
        i += run;
        if (i == len)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out += (c == '"' || c == '\\') ? 2 : 1;
            i++;
        } else if (c >= 0x80) {
            size_t n = text_utf8_seq(s + i, len - i);
            out += n && !text_is_c1(s + i, n) ? n : 6;
            i += n ? n : 1;
        } else {
            out += (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') ? 2 : 6;
            i++;
        }
    }
    return out;
}
