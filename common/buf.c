/*
 * buf.c - growable byte buffer; see buf.h.
 */
#include "buf.h"

#include "gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_release(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_clear(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_grow(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + extra + 1)
            cap *= 2;
        char *grown = gw_xrealloc(b->data, cap);
        b->data = grown;
        b->cap = cap;
        b->data[b->len] = '\0'; /* the first allocation has no terminator yet */
    }
}

void buf_append_grow(struct buf *b, const void *ptr, size_t len)
{
    buf_grow(b, len);
    if (len)
        memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    int n;

    /*
     * Format into the spare room first: most appends fit, and a second pass
     * is needed only when the text is longer. (A sizing pass with a NULL
     * buffer also trips gcc's -Wformat-truncation under UBSan at -O2.)
     */
    buf_grow(b, 64);
    room = b->cap - b->len;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        buf_grow(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->data ? b->data : gw_xmemdup("", 0);
    if (len)
        *len = b->len;
    buf_init(b);
    return p;
}
