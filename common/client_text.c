/*
 * client_text.c - server text made safe for a terminal; see client_text.h.
 */
#include "client_text.h"

#include "text.h"

#include <stdbool.h>
#include <string.h>

/* (s, len) escaped: for reading, or as the characters of a JSON string. */
static void escape(struct buf *out, const char *s, size_t len, bool json)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n;

        if (c >= 0x20 && c < 0x7f) {
            /* A run at once: nearly all text is plain. */
            size_t j = i + 1;
            while (j < len && (unsigned char)s[j] >= 0x20 && (unsigned char)s[j] < 0x7f)
                j++;
            buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        if (!json && (c == '\n' || c == '\t' || c == '\r')) {
            buf_append(out, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\r", 2);
            i++;
            continue;
        }
        n = c >= 0x80 ? text_utf8_seq(s + i, len - i) : 0;
        if (n == 0) {
            /* C0, DEL, or not UTF-8 (JSON has no escape for a byte: the replacement character). */
            if (!json)
                buf_appendf(out, "\\x%02x", c);
            else if (c < 0x80)
                buf_appendf(out, "\\u%04x", c);
            else
                buf_append(out, "\\ufffd", 6);
            i++;
        } else if (n == 2 && c == 0xC2 && (unsigned char)s[i + 1] < 0xA0) {
            /* U+0080..U+009F: C1 controls, which some terminals obey (CSI is U+009B). */
            buf_appendf(out, "\\u%04x", (unsigned char)s[i + 1]);
            i += 2;
        } else {
            buf_append(out, s + i, n);
            i += n;
        }
    }
}

void client_text_safe(struct buf *out, const char *s, size_t len)
{
    escape(out, s, len, false);
}

void client_text_json_safe(struct buf *out, const char *s, size_t len)
{
    escape(out, s, len, true);
}

const char *client_text_shown(const char *s, size_t len, char *out, size_t outlen)
{
    struct buf piece = BUF_INIT;
    size_t o = 0, i = 0;

    if (outlen < 4) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    /* A character (or a byte that is none) at a time, so that a cut never splits an escape. */
    while (i < len) {
        size_t step = text_utf8_seq(s + i, len - i);
        step = step ? step : 1;
        buf_clear(&piece);
        escape(&piece, s + i, step, false);
        if (o + piece.len + 4 > outlen) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece.data, piece.len);
        o += piece.len;
        i += step;
    }
    out[o] = '\0';
    buf_release(&piece);
    return out;
}
