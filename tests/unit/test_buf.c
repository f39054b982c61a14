/*
 * test_buf.c - common/buf.h: the growable byte buffer and its invariants.
 */
#include "buf.h"

#include "gw.h"
#include "tap.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void test_empty(void)
{
    struct buf b = BUF_INIT;
    size_t len = 99;

    ok(b.data == NULL && b.len == 0 && b.cap == 0, "BUF_INIT is empty with no storage");
    buf_init(&b);
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_init is empty with no storage");
    buf_clear(&b);
    ok(b.data == NULL && b.len == 0, "buf_clear of an empty buffer is harmless");
    buf_append(&b, "", 0);
    ok(b.len == 0 && (b.data == NULL || b.data[0] == '\0'), "appending nothing keeps it empty");

    char *s = buf_detach(&b, &len);
    ok(s != NULL, "buf_detach of an empty buffer gives a string, not NULL");
    is_str(s, "", "buf_detach of an empty buffer gives \"\"");
    is_uint(len, 0, "buf_detach of an empty buffer: *len 0");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_detach leaves the buffer empty");
    free(s);
    buf_release(&b);
    ok(b.data == NULL, "buf_release of an empty buffer is harmless");
}

static void test_append(void)
{
    struct buf b = BUF_INIT;
    size_t total = 0;
    int terminated = 1;
    char *want = gw_xmalloc(100000);

    /* Many appends of every size up to 300 bytes, crossing many doublings. */
    for (size_t n = 0; total + n < 100000 && n < 300; n++) {
        char chunk[300];
        for (size_t k = 0; k < n; k++)
            chunk[k] = (char)('a' + (total + k) % 26);
        memcpy(want + total, chunk, n);
        buf_append(&b, chunk, n);
        total += n;
        terminated &= b.data != NULL && b.data[b.len] == '\0';
        if (b.cap <= b.len) {
            terminated = 0;
            break;
        }
    }
    ok(terminated, "after every append data[len] == NUL and cap > len");
    is_uint(b.len, total, "len is the sum of the appends (%zu)", total);
    is_mem(b.data, b.len, want, total, "the bytes are the appends in order");

    /* Bytes with NULs in them. */
    struct buf z = BUF_INIT;
    buf_append(&z, "a\0b", 3);
    buf_append(&z, "\0", 1);
    is_mem(z.data, z.len, "a\0b\0", 4, "NULs are kept as data");
    ok(z.data[z.len] == '\0', "and the terminator is still there");
    buf_release(&z);

    /* clear keeps the storage for reuse. */
    size_t cap = b.cap;
    char *data = b.data;
    buf_clear(&b);
    ok(b.len == 0 && b.data == data && b.cap == cap, "buf_clear keeps the storage");
    ok(b.data[0] == '\0', "buf_clear leaves an empty string");
    buf_append(&b, "xyz", 3);
    is_str(b.data, "xyz", "appending after clear starts from the beginning");

    size_t len;
    char *s = buf_detach(&b, &len);
    is_str(s, "xyz", "buf_detach hands over the bytes");
    is_uint(len, 3, "buf_detach: *len");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_detach leaves the buffer empty");
    free(s);
    s = buf_detach(&b, NULL);
    is_str(s, "", "buf_detach with len NULL");
    free(s);
    free(want);
}

static void test_grow(void)
{
    struct buf b = BUF_INIT;

    buf_append(&b, "start", 5);
    buf_grow(&b, 10000);
    ok(b.cap >= b.len + 10000 + 1, "buf_grow makes room for extra bytes and the terminator");
    is_str(b.data, "start", "buf_grow keeps the content");
    char *data = b.data;
    for (int i = 0; i < 1000; i++)
        buf_append(&b, "0123456789", 10);
    ok(b.data == data, "appends within the grown room do not move the storage");
    is_uint(b.len, 10005, "len after the appends");
    ok(b.data[b.len] == '\0', "terminated after the appends");
    size_t cap = b.cap;
    buf_grow(&b, 0);
    ok(b.cap == cap && b.data == data, "buf_grow(0) with room left changes nothing");
    buf_release(&b);
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "buf_release empties the buffer");
    buf_append(&b, "again", 5);
    is_str(b.data, "again", "a released buffer can be reused");
    buf_release(&b);
}

/*
 * The invariant holds from the first allocation on, even when it comes from
 * buf_grow rather than an append. Fresh memory is made non-zero (glibc's
 * M_PERTURB; ASan fills new blocks with 0xbe anyway) so that a missing
 * terminator shows.
 */
static void test_grow_first(void)
{
    struct buf b = BUF_INIT;
    size_t len;

    mallopt(M_PERTURB, 0x55);
    buf_grow(&b, 10);
    ok(b.data != NULL && b.len == 0, "buf_grow on an empty buffer allocates");
    ok(b.data && b.data[0] == '\0', "buf_grow on an empty buffer: data[len] == NUL (got 0x%02x)",
       b.data ? (unsigned char)b.data[0] : 0);
    char *s = buf_detach(&b, &len);
    is_uint(len, 0, "buf_detach after a bare buf_grow: *len 0");
    free(s);
    mallopt(M_PERTURB, 0);
}

static void test_appendf(void)
{
    struct buf b = BUF_INIT;
    char big[3000];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_appendf(&b, "%s=%d;", "a", 42);
    is_str(b.data, "a=42;", "appendf formats");
    buf_appendf(&b, "%s", big);
    is_int((long long)b.len, 5 + 2999, "appendf takes text longer than any fixed buffer");
    ok(b.data[b.len] == '\0', "and keeps the terminator");
    buf_release(&b);

    /* Every length around the spare room: formatted in place, or sized and redone. */
    static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst"
                               "uvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij";
    int same = 1;
    for (size_t start = 0; start < 70; start++) {
        for (size_t n = 0; n < sizeof(text); n++) {
            struct buf f = BUF_INIT, want = BUF_INIT;
            buf_append(&f, big, start);
            buf_append(&want, big, start);
            buf_appendf(&f, "%.*s", (int)n, text);
            buf_append(&want, text, n);
            if (f.len != want.len || memcmp(f.data, want.data, want.len + 1) != 0) {
                if (same)
                    diag("after %zu bytes, appendf of %zu bytes gave %zu bytes", start, n, f.len);
                same = 0;
            }
            buf_release(&f);
            buf_release(&want);
        }
    }
    ok(same, "appendf gives what append gives, at every length around the spare room");
}

int main(void)
{
    test_appendf();
    test_grow_first();
    test_empty();
    test_append();
    test_grow();
    return done_testing();
}
