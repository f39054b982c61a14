/*
 * buf.h - a growable byte buffer (the strbuf/sds idea).
 *
 * Depends on gw.h only. Invariant: data[len] == '\0' whenever data != NULL,
 * so the bytes can be handed to C string functions when they hold no NUL.
 * The storage moves when it grows: keep offsets, not pointers, across
 * appends.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_init(struct buf *b);
/* Frees the storage and leaves b empty and reusable. */
void buf_release(struct buf *b);
/* Empties b but keeps its storage for reuse. */
void buf_clear(struct buf *b);
/* Makes room for extra more bytes, so the appends that follow do not move data. */
void buf_grow(struct buf *b, size_t extra);
/* buf_append when b must grow first. */
void buf_append_grow(struct buf *b, const void *ptr, size_t len);

/*
 * Appends (ptr, len). In line while the room is there: encoders append a
 * few bytes at a time, twenty-odd pieces per message.
 */
static inline void buf_append(struct buf *b, const void *ptr, size_t len)
{
    if (b->cap - b->len > len) { /* room for the bytes and the NUL (cap is 0 before any) */
        if (len)
            memcpy(b->data + b->len, ptr, len);
        b->len += len;
        b->data[b->len] = '\0';
        return;
    }
    buf_append_grow(b, ptr, len);
}
/* Appends printf-formatted text, of any length. */
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (free() them) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);

#endif
