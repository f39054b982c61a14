/*
 * test_text.c - common/text.h: UTF-8 validity, channel names, decimal parsing.
 */
#include "text.h"

#include "gw.h"
#include "model.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>

/* Bytes with their length, so rows may hold NULs. */
#define B(s) s, sizeof(s) - 1

struct utf8_case {
    const char *name;
    const char *s;
    size_t len;
    bool valid;
};

static const struct utf8_case utf8_cases[] = {
    {"empty", B(""), true},
    {"ASCII", B("hello, world"), true},
    {"embedded NUL", B("a\0b"), true},
    {"only NUL", B("\0"), true},
    {"DEL", B("\x7f"), true},
    {"2-byte U+00E9", B("caf\xc3\xa9"), true},
    {"2-byte lowest U+0080", B("\xc2\x80"), true},
    {"2-byte highest U+07FF", B("\xdf\xbf"), true},
    {"3-byte U+20AC", B("\xe2\x82\xac"), true},
    {"3-byte lowest U+0800", B("\xe0\xa0\x80"), true},
    {"3-byte U+D7FF before surrogates", B("\xed\x9f\xbf"), true},
    {"3-byte U+E000 after surrogates", B("\xee\x80\x80"), true},
    {"3-byte U+FFFF", B("\xef\xbf\xbf"), true},
    {"4-byte U+1F600", B("\xf0\x9f\x98\x80"), true},
    {"4-byte lowest U+10000", B("\xf0\x90\x80\x80"), true},
    {"4-byte highest U+10FFFF", B("\xf4\x8f\xbf\xbf"), true},
    {"mixed widths", B("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), true},
    {"overlong C0 80 (NUL)", B("\xc0\x80"), false},
    {"overlong C1 BF", B("\xc1\xbf"), false},
    {"overlong E0 80 80", B("\xe0\x80\x80"), false},
    {"overlong E0 9F BF (U+07FF)", B("\xe0\x9f\xbf"), false},
    {"overlong F0 80 80 80", B("\xf0\x80\x80\x80"), false},
    {"overlong F0 8F BF BF (U+FFFF)", B("\xf0\x8f\xbf\xbf"), false},
    {"surrogate ED A0 80 (U+D800)", B("\xed\xa0\x80"), false},
    {"surrogate ED BF BF (U+DFFF)", B("\xed\xbf\xbf"), false},
    {"surrogate pair as CESU-8", B("\xed\xa0\xbd\xed\xb8\x80"), false},
    {"above U+10FFFF: F4 90 80 80", B("\xf4\x90\x80\x80"), false},
    {"F5 lead byte", B("\xf5\x80\x80\x80"), false},
    {"FF byte", B("\xff"), false},
    {"FE byte", B("\xfe"), false},
    {"truncated 2-byte at end", B("a\xc3"), false},
    {"truncated 3-byte (1 of 2)", B("\xe2"), false},
    {"truncated 3-byte (2 of 2)", B("\xe2\x82"), false},
    {"truncated 4-byte (3 of 3)", B("\xf0\x9f\x98"), false},
    {"truncated then ASCII", B("\xe2\x82z"), false},
    {"lone continuation 80", B("\x80"), false},
    {"lone continuation BF after ASCII", B("ab\xbf"), false},
    {"extra continuation after 2-byte", B("\xc3\xa9\xa9"), false},
    {"NUL in place of continuation", B("\xc3\0"), false},
    {"invalid after valid prefix", B("caf\xc3\xa9 \xff"), false},
};

static void test_utf8(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(utf8_cases); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        is_int(text_utf8_valid(c->s, c->len), c->valid, "utf8: %s -> %s", c->name,
               c->valid ? "valid" : "invalid");
    }
    /* The length bounds the check: bytes past it are never looked at. */
    ok(text_utf8_valid("ab\xff", 2), "utf8: invalid byte past len is not read");
    ok(!text_utf8_valid("\xe2\x82\xac", 2), "utf8: sequence cut by len is invalid");
}

/*
 * An independent reference: the well-formed byte sequences of the Unicode
 * Standard, Table 3-7, checked range by range. Returns the length of the
 * sequence at the start of (s, len), or 0.
 */
static size_t ref_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;

    if (c <= 0x7F)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F;
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F;
    else
        return 0;
    if (len - 1 < need)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++) {
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    }
    return need + 1;
}

static bool ref_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n) {
        if ((n = ref_utf8_seq(s + i, len - i)) == 0)
            return false;
    }
    return true;
}

/* Every 1-, 2- and 3-byte string, and 4-byte ones around every lead byte F0-FF. */
static void test_utf8_exhaustive(void)
{
    static const unsigned char probes[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                           0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xFF};
    unsigned char b[4];
    unsigned long checked = 0, wrong = 0, wrong_seq = 0;

#define CHECK(n)                                                                                   \
    do {                                                                                           \
        checked++;                                                                                 \
        if (text_utf8_valid((const char *)b, (n)) != ref_utf8_valid(b, (n)) && wrong++ < 5)        \
            diag("valid: %d bytes %02x %02x %02x %02x: got %d", (n), b[0], b[1], b[2], b[3],       \
                 !ref_utf8_valid(b, (n)));                                                         \
        if (text_utf8_seq((const char *)b, (n)) != ref_utf8_seq(b, (n)) && wrong_seq++ < 5)        \
            diag("seq: %d bytes %02x %02x %02x %02x: got %zu, want %zu", (n), b[0], b[1], b[2],    \
                 b[3], text_utf8_seq((const char *)b, (n)), ref_utf8_seq(b, (n)));                 \
    } while (0)

    b[1] = b[2] = b[3] = 0;
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        CHECK(1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            CHECK(2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                CHECK(3);
            }
        }
    }
    for (unsigned x = 0xF0; x < 256; x++) {
        b[0] = (unsigned char)x;
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            for (size_t k = 0; k < sizeof(probes); k++) {
                b[2] = probes[k];
                for (size_t l = 0; l < sizeof(probes); l++) {
                    b[3] = probes[l];
                    CHECK(4);
                }
            }
        }
    }
#undef CHECK
    is_uint(wrong, 0, "utf8_valid: %lu short strings agree with Table 3-7", checked);
    is_uint(wrong_seq, 0, "utf8_seq: %lu short strings agree with Table 3-7", checked);
}

static void test_utf8_seq(void)
{
    static const struct {
        const char *name;
        const char *s;
        size_t len;
        size_t want;
    } cases[] = {
        {"ASCII", B("ab"), 1},
        {"NUL", B("\0x"), 1},
        {"2-byte then more", B("\xc3\xa9z"), 2},
        {"3-byte", B("\xe2\x82\xac"), 3},
        {"4-byte then ASCII", B("\xf0\x9f\x98\x80!"), 4},
        {"U+10FFFF", B("\xf4\x8f\xbf\xbf"), 4},
        {"truncated 3-byte", B("\xe2\x82"), 0},
        {"3-byte cut by len", "\xe2\x82\xac", 2, 0},
        {"4-byte cut by len", "\xf0\x9f\x98\x80", 3, 0},
        {"lone continuation",
         B("\x80"
           "a"),
         0},
        {"overlong C0 80", B("\xc0\x80"), 0},
        {"overlong E0 80 80", B("\xe0\x80\x80"), 0},
        {"overlong F0 80 80 80", B("\xf0\x80\x80\x80"), 0},
        {"surrogate", B("\xed\xa0\x80"), 0},
        {"above U+10FFFF", B("\xf4\x90\x80\x80"), 0},
        {"FF", B("\xff"), 0},
        {"bad second byte", B("\xc3\x41"), 0},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        is_uint(text_utf8_seq(cases[i].s, cases[i].len), cases[i].want, "utf8_seq: %s -> %zu",
                cases[i].name, cases[i].want);
}

static void test_channel(void)
{
    char name[GW_CHANNEL_MAX + 2];
    static const char allowed[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

    ok(text_channel_valid("a", 1), "channel: 1 char ok");
    memset(name, 'x', sizeof(name));
    ok(text_channel_valid(name, GW_CHANNEL_MAX), "channel: %d chars ok", GW_CHANNEL_MAX);
    ok(!text_channel_valid(name, GW_CHANNEL_MAX + 1), "channel: %d chars rejected",
       GW_CHANNEL_MAX + 1);
    ok(!text_channel_valid("", 0), "channel: empty rejected");
    ok(!text_channel_valid("abc", 0), "channel: length 0 rejected even with bytes behind");
    ok(text_channel_valid(".", 1), "channel: '.' allowed");
    ok(text_channel_valid("_", 1), "channel: '_' allowed");
    ok(text_channel_valid("-", 1), "channel: '-' allowed");
    ok(text_channel_valid("news.eu_west-1", 14), "channel: mixed allowed chars");
    ok(text_channel_valid("Zz09", 4), "channel: letters and digits");
    ok(text_channel_dots(".", 1) && text_channel_dots("..", 2), "channel: '.' and '..' are dots");
    ok(!text_channel_dots("...", 3) && !text_channel_dots(".a", 2) && !text_channel_dots("a.", 2) &&
           !text_channel_dots("", 0),
       "channel: '...', '.a', 'a.' and '' are not");

    static const struct {
        const char *name;
        const char *s;
        size_t len;
    } bad[] = {
        {"space", B("a b")},
        {"slash", B("a/b")},
        {"star", B("a*")},
        {"colon", B("a:b")},
        {"plus", B("a+b")},
        {"percent", B("a%20")},
        {"tab", B("a\tb")},
        {"newline", B("a\n")},
        {"embedded NUL", B("a\0b")},
        {"non-ASCII e-acute", B("caf\xc3\xa9")},
        {"non-ASCII high byte", B("\xff")},
        {"at sign", B("a@b")},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++)
        ok(!text_channel_valid(bad[i].s, bad[i].len), "channel: %s rejected", bad[i].name);

    /* Every byte outside [A-Za-z0-9._-] is rejected, every byte inside accepted. */
    int wrong = 0;
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        bool want = c != 0 && strchr(allowed, c) != NULL;
        if (text_channel_valid(&one, 1) != want) {
            if (wrong++ < 5)
                diag("byte 0x%02x: got %d", c, !want);
        }
    }
    is_int(wrong, 0, "channel: each of the 256 single bytes judged right");
}

struct u64_case {
    const char *s;
    uint64_t max;
    bool ok;
    uint64_t want;
};

static const struct u64_case u64_cases[] = {
    {"", UINT64_MAX, false, 0},
    {"0", UINT64_MAX, true, 0},
    {"7", UINT64_MAX, true, 7},
    {"42", 100, true, 42},
    {"007", 100, true, 7},
    {"+1", UINT64_MAX, false, 0},
    {"-1", UINT64_MAX, false, 0},
    {"-0", UINT64_MAX, false, 0},
    {" 1", UINT64_MAX, false, 0},
    {"1 ", UINT64_MAX, false, 0},
    {"1 2", UINT64_MAX, false, 0},
    {"1a", UINT64_MAX, false, 0},
    {"0x10", UINT64_MAX, false, 0},
    {"1.0", UINT64_MAX, false, 0},
    {"1e3", UINT64_MAX, false, 0},
    {"100", 100, true, 100},
    {"101", 100, false, 0},
    {"99", 100, true, 99},
    {"1000", 100, false, 0},
    {"65535", 65535, true, 65535},
    {"65536", 65535, false, 0},
    {"0", 0, true, 0},
    {"1", 0, false, 0},
    {"5", 5, true, 5},
    {"7", 5, false, 0},
    {"10", 5, false, 0},
    {"18446744073709551615", UINT64_MAX, true, UINT64_MAX},
    {"18446744073709551616", UINT64_MAX, false, 0},
    {"18446744073709551620", UINT64_MAX, false, 0},
    {"99999999999999999999", UINT64_MAX, false, 0},
    {"000000000000000000000000000001", UINT64_MAX, true, 1},
    {"9223372036854775807", INT64_MAX, true, INT64_MAX},
    {"9223372036854775808", INT64_MAX, false, 0},
    {"184467440737095516150", UINT64_MAX, false, 0},
};

/* Around each limit: max - 2 .. max + 2 (where they exist), accepted iff <= max. */
static void test_parse_u64_bounds(void)
{
    static const uint64_t maxes[] = {
        0, 1, 9, 10, 99, 100, 65535, 86400, 16777216, INT64_MAX, UINT64_MAX - 1, UINT64_MAX};
    unsigned wrong = 0, checked = 0;

    for (size_t i = 0; i < GW_ARRAY_SIZE(maxes); i++) {
        for (int d = -2; d <= 2; d++) {
            uint64_t v = maxes[i] + (uint64_t)(int64_t)d;
            if ((d < 0 && v > maxes[i]) || (d > 0 && v < maxes[i]))
                continue; /* wrapped around */
            char s[32];
            uint64_t out = 0;
            snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
            bool got = text_parse_u64(s, maxes[i], &out);
            checked++;
            if (got != (v <= maxes[i]) || (got && out != v)) {
                if (wrong++ < 5)
                    diag("parse_u64(\"%s\", max %llu): got %d", s, (unsigned long long)maxes[i],
                         got);
            }
        }
    }
    is_uint(wrong, 0, "parse_u64: %u values around %zu limits", checked, GW_ARRAY_SIZE(maxes));
}

static void test_parse_u64(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(u64_cases); i++) {
        const struct u64_case *c = &u64_cases[i];
        uint64_t out = 12345;
        bool got = text_parse_u64(c->s, c->max, &out);
        is_int(got, c->ok, "parse_u64(\"%s\", max %llu) %s", c->s, (unsigned long long)c->max,
               c->ok ? "accepted" : "rejected");
        if (c->ok)
            is_uint(out, c->want, "parse_u64(\"%s\") value", c->s);
    }
    uint64_t out = 1;
    ok(!text_parse_u64(NULL, UINT64_MAX, &out), "parse_u64(NULL) rejected");
}

/* The plain run stops at the first byte JSON would escape, wherever it sits among the eight. */
static void test_json_plain_run(void)
{
    char buf[24];
    int bad = 0, checked = 0;

    for (int c = 0; c < 256; c++) {
        int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
        for (size_t pos = 0; pos < sizeof(buf); pos++) {
            memset(buf, 'a', sizeof(buf));
            buf[pos] = (char)c;
            size_t want = plain ? sizeof(buf) : pos;
            for (size_t len = pos + 1; len <= sizeof(buf); len += 7) {
                size_t w = want < len ? want : len;
                checked++;
                if (text_json_plain_run(buf, len) != w) {
                    if (!bad++)
                        diag("byte 0x%02x at %zu of %zu: run %zu, want %zu", c, pos, len,
                             text_json_plain_run(buf, len), w);
                }
            }
        }
    }
    ok(bad == 0, "text_json_plain_run stops at every escaped byte value and position (%d cases)",
       checked);
    is_uint(text_json_plain_run("", 0), 0, "empty: 0");
    is_uint(text_json_len("a\"b\\c\n\x01\xc3\xa9\xff", 10), 2 + 1 + 2 + 1 + 2 + 1 + 2 + 6 + 2 + 6,
            "text_json_len counts each kind of byte");
    /* DEL and C1 escaped as \u00XX; U+00A0, the first code point after C1, kept as it is. */
    is_uint(text_json_len("\x7f\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0", 9), 2 + 6 + 6 + 6 + 6 + 2,
            "text_json_len: DEL and C1 take six bytes, U+00A0 its two");
    ok(text_is_c1("\xc2\x85", 2) && !text_is_c1("\xc2\xa0", 2) && !text_is_c1("\xc3\x85", 2),
       "text_is_c1: C2 80..9F only");
}

int main(void)
{
    test_json_plain_run();
    test_utf8();
    test_utf8_seq();
    test_utf8_exhaustive();
    test_channel();
    test_parse_u64();
    test_parse_u64_bounds();
    return done_testing();
}
