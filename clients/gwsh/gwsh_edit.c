/*
 * gwsh_edit.c - the shell's line editor; see gwsh_edit.h.
 *
 * Drawing follows linenoise's multi-line mode: remember on which row of the
 * drawn line the cursor sits, so that hiding can go up that many rows and
 * clear to the end of the screen, however many rows a long line wrapped to.
 */
#include "gwsh_edit.h"

#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

int edit_start(struct edit *e, int fd, const char *prompt, char err[GW_ERRLEN])
{
    struct termios raw;

    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->prompt = prompt;
    buf_init(&e->line);
    buf_append(&e->line, "", 0); /* data is never NULL from here on */
    if (tcgetattr(fd, &e->saved) < 0) {
        snprintf(err, GW_ERRLEN, "tcgetattr: %s", strerror(errno));
        buf_release(&e->line);
        return -1;
    }
    raw = e->saved;
    raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INLCR | INPCK | ISTRIP | IXON);
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    /* TCSADRAIN, not TCSAFLUSH: keys typed ahead of the prompt are kept. */
    if (tcsetattr(fd, TCSADRAIN, &raw) < 0) {
        snprintf(err, GW_ERRLEN, "tcsetattr: %s", strerror(errno));
        buf_release(&e->line);
        return -1;
    }
    e->raw = true;
    return 0;
}

void edit_stop(struct edit *e)
{
    if (e->raw)
        tcsetattr(e->fd, TCSADRAIN, &e->saved);
    e->raw = false;
    buf_release(&e->line);
    for (size_t i = 0; i < e->nhist; i++)
        GW_FREE_AND_NULL(e->hist[i]);
    e->nhist = e->hist_at = 0;
    GW_FREE_AND_NULL(e->draft);
}

/* ---- measuring ---- */

static unsigned term_cols(const struct edit *e)
{
    struct winsize ws;

    if (ioctl(e->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Length of the character at s (the line holds valid UTF-8 only). */
static size_t char_len(const char *s, size_t left)
{
    size_t n = text_utf8_seq(s, left);
    return n ? n : 1;
}

/* Columns (s, len) takes on the screen: wide characters 2, combining 0. */
static size_t width(const char *s, size_t len)
{
    size_t w = 0, i = 0;

    while (i < len) {
        size_t n = char_len(s + i, len - i);
        const unsigned char *p = (const unsigned char *)s + i;
        wchar_t cp;
        int cw;

        if (n == 1)
            cp = p[0];
        else if (n == 2)
            cp = ((p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        else if (n == 3)
            cp = ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        else
            cp = ((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) |
                 (p[3] & 0x3F);
        cw = wcwidth(cp); /* -1 outside a UTF-8 locale: count 1, the usual guess */
        w += cw < 0 ? 1 : (size_t)cw;
        i += n;
    }
    return w;
}

static size_t prev_char(const struct edit *e, size_t pos)
{
    while (pos > 0) {
        pos--;
        if (((unsigned char)e->line.data[pos] & 0xC0) != 0x80)
            break;
    }
    return pos;
}

static size_t next_char(const struct edit *e, size_t pos)
{
    return pos < e->line.len ? pos + char_len(e->line.data + pos, e->line.len - pos) : pos;
}

/* ---- drawing ---- */

static void put(struct buf *screen, const char *s)
{
    buf_append(screen, s, strlen(s));
}

static void put_n(struct buf *screen, const char *fmt, size_t n)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), fmt, n);
    put(screen, tmp);
}

void edit_hide(struct edit *e, struct buf *screen)
{
    if (!e->shown)
        return;
    if (e->cursor_row)
        put_n(screen, "\x1b[%zuA", e->cursor_row);
    put(screen, "\r\x1b[J");
    e->shown = false;
}

void edit_show(struct edit *e, struct buf *screen)
{
    size_t cols = term_cols(e), pw = strlen(e->prompt);
    size_t total = pw + width(e->line.data, e->line.len);
    size_t cur = pw + width(e->line.data, e->pos);
    size_t end_row, cur_row, cur_col;

    edit_hide(e, screen);
    put(screen, e->prompt);
    buf_append(screen, e->line.data, e->line.len);
    /* At the exact end of a row the terminal waits to wrap; make it, so rows can be counted. */
    if (total > 0 && total % cols == 0)
        put(screen, "\r\n");
    end_row = total / cols;
    cur_row = cur / cols;
    cur_col = cur % cols;
    if (end_row > cur_row)
        put_n(screen, "\x1b[%zuA", end_row - cur_row);
    put(screen, "\r");
    if (cur_col)
        put_n(screen, "\x1b[%zuC", cur_col);
    e->cursor_row = (unsigned)cur_row;
    e->shown = true;
    e->dirty = false;
}

void edit_refresh(struct edit *e, struct buf *screen)
{
    if (e->dirty || !e->shown)
        edit_show(e, screen);
}

/* ---- editing ---- */

static void set_line(struct edit *e, const char *s)
{
    buf_clear(&e->line);
    buf_append(&e->line, s, strlen(s));
    e->pos = e->line.len;
    e->dirty = true;
    e->dropped = 0; /* a line from the history, or a new one: whole */
}

static void insert(struct edit *e, const char *s, size_t n, struct buf *screen)
{
    /*
     * Past the limit the bytes are dropped but counted: the line is no
     * longer what was typed, and at Enter (EDIT_LINE with dropped set)
     * the caller refuses it instead of sending what is left. One bell
     * when it starts, not one per byte.
     */
    if (e->dropped || e->line.len + n > EDIT_LINE_MAX) {
        if (!e->dropped)
            put(screen, "\a");
        e->dropped += n;
        return;
    }
    buf_grow(&e->line, n);
    memmove(e->line.data + e->pos + n, e->line.data + e->pos, e->line.len - e->pos + 1);
    memcpy(e->line.data + e->pos, s, n);
    e->line.len += n;
    e->pos += n;
    e->dirty = true;
}

/* Removes the bytes [from, to). */
static void cut(struct edit *e, size_t from, size_t to)
{
    if (from >= to)
        return;
    memmove(e->line.data + from, e->line.data + to, e->line.len - to + 1);
    e->line.len -= to - from;
    if (e->pos >= to)
        e->pos -= to - from;
    else if (e->pos > from)
        e->pos = from;
    e->dirty = true;
    if (e->line.len == 0)
        e->dropped = 0; /* nothing of the cut line is left: a new one may be typed */
}

static void move_to(struct edit *e, size_t pos)
{
    if (pos != e->pos)
        e->dirty = true;
    e->pos = pos;
}

static void history(struct edit *e, int dir)
{
    if (dir < 0 && e->hist_at > 0) {
        if (e->hist_at == e->nhist) {
            free(e->draft);
            e->draft = gw_xstrdup(e->line.data);
            e->draft_dropped = e->dropped;
        }
        set_line(e, e->hist[--e->hist_at]);
    } else if (dir > 0 && e->hist_at < e->nhist) {
        e->hist_at++;
        set_line(e, e->hist_at == e->nhist ? (e->draft ? e->draft : "") : e->hist[e->hist_at]);
        if (e->hist_at == e->nhist)
            e->dropped = e->draft_dropped; /* the draft back, still refused if it was cut */
    }
}

static void word_back(struct edit *e)
{
    size_t p = e->pos;

    while (p > 0 && e->line.data[p - 1] == ' ')
        p--;
    while (p > 0 && e->line.data[p - 1] != ' ')
        p--;
    cut(e, p, e->pos);
}

/* ESC [ <params> <final>, or ESC O <final>. */
static void escape(struct edit *e, char final)
{
    const char *p = e->seq;

    switch (final) {
    case 'C':
        move_to(e, next_char(e, e->pos));
        break;
    case 'D':
        move_to(e, prev_char(e, e->pos));
        break;
    case 'H':
        move_to(e, 0);
        break;
    case 'F':
        move_to(e, e->line.len);
        break;
    case 'A':
        history(e, -1);
        break;
    case 'B':
        history(e, +1);
        break;
    case '~':
        if (strcmp(p, "1") == 0 || strcmp(p, "7") == 0)
            move_to(e, 0);
        else if (strcmp(p, "4") == 0 || strcmp(p, "8") == 0)
            move_to(e, e->line.len);
        else if (strcmp(p, "3") == 0)
            cut(e, e->pos, next_char(e, e->pos));
        break;
    default:
        break; /* keys we do not bind */
    }
}

/* Enter: leave the line on the screen as typed and go to the next row. */
static void enter(struct edit *e, struct buf *screen)
{
    edit_hide(e, screen);
    put(screen, e->prompt);
    buf_append(screen, e->line.data, e->line.len);
    put(screen, "\r\n");
    e->shown = false;
}

static enum edit_result control(struct edit *e, unsigned char c, struct buf *screen)
{
    switch (c) {
    case '\n':
        if (e->after_cr)
            break; /* the LF of a pasted CRLF: that line was entered at its CR */
        enter(e, screen);
        return EDIT_LINE;
    case '\r':
        enter(e, screen);
        return EDIT_LINE;
    case 0x01: /* Ctrl-A */
        move_to(e, 0);
        break;
    case 0x02: /* Ctrl-B */
        move_to(e, prev_char(e, e->pos));
        break;
    case 0x03: /* Ctrl-C: abandon the line, as a shell does */
        set_line(e, "");
        e->hist_at = e->nhist;
        break;
    case 0x04: /* Ctrl-D */
        if (e->line.len == 0) {
            edit_hide(e, screen);
            return EDIT_EOF;
        }
        cut(e, e->pos, next_char(e, e->pos));
        break;
    case 0x05: /* Ctrl-E */
        move_to(e, e->line.len);
        break;
    case 0x06: /* Ctrl-F */
        move_to(e, next_char(e, e->pos));
        break;
    case 0x08: /* Ctrl-H */
    case 0x7f: /* Backspace */
        cut(e, prev_char(e, e->pos), e->pos);
        break;
    case 0x0b: /* Ctrl-K */
        cut(e, e->pos, e->line.len);
        break;
    case 0x0c: /* Ctrl-L */
        put(screen, "\x1b[H\x1b[2J");
        e->shown = false;
        e->dirty = true;
        break;
    case 0x0e: /* Ctrl-N */
        history(e, +1);
        break;
    case 0x10: /* Ctrl-P */
        history(e, -1);
        break;
    case 0x15: /* Ctrl-U */
        cut(e, 0, e->pos);
        break;
    case 0x17: /* Ctrl-W */
        word_back(e);
        break;
    case 0x1b:
        e->state = EDIT_S_ESC;
        break;
    default:
        break; /* Tab and the other controls are not bound */
    }
    return EDIT_MORE;
}

enum edit_result edit_key(struct edit *e, unsigned char c, struct buf *screen)
{
    enum edit_result r;

    if (c != '\r' && c != '\n')
        e->after_cr = false;
    switch (e->state) {
    case EDIT_S_ESC:
        e->seq_len = 0;
        e->seq[0] = '\0';
        e->state = c == '[' ? EDIT_S_CSI : c == 'O' ? EDIT_S_SS3 : EDIT_S_TEXT;
        return EDIT_MORE; /* Alt-<key> is not bound */
    case EDIT_S_CSI:
        if (c >= 0x20 && c <= 0x3f) {
            if (e->seq_len + 1 < sizeof(e->seq)) {
                e->seq[e->seq_len++] = (char)c;
                e->seq[e->seq_len] = '\0';
            }
            return EDIT_MORE;
        }
        e->state = EDIT_S_TEXT;
        if (c >= 0x40 && c <= 0x7e)
            escape(e, (char)c);
        return EDIT_MORE;
    case EDIT_S_SS3:
        e->state = EDIT_S_TEXT;
        escape(e, (char)c);
        return EDIT_MORE;
    case EDIT_S_TEXT:
        break;
    }

    if (e->utf_need) {
        if ((c & 0xC0) == 0x80) {
            e->utf[e->utf_len++] = c;
            if (e->utf_len < e->utf_need)
                return EDIT_MORE;
            /* Whole: keep it if it is valid and not a C1 control (U+0080..U+009F). */
            if (text_utf8_seq((const char *)e->utf, e->utf_len) == e->utf_len &&
                !(e->utf[0] == 0xC2 && e->utf[1] < 0xA0))
                insert(e, (const char *)e->utf, e->utf_len, screen);
            e->utf_need = 0;
            return EDIT_MORE;
        }
        e->utf_need = 0; /* cut short: drop it, and take c on its own */
    }
    if (c >= 0x20 && c < 0x7f) {
        char ch = (char)c;
        insert(e, &ch, 1, screen);
        return EDIT_MORE;
    }
    if (c >= 0x80) {
        e->utf_need = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
        e->utf[0] = c;
        e->utf_len = 1;
        return EDIT_MORE;
    }
    r = control(e, c, screen);
    e->after_cr = c == '\r';
    return r;
}

void edit_done(struct edit *e)
{
    /* A cut line is not kept: Up would bring it back whole-looking, and Enter would send it. */
    if (e->line.len && !e->dropped &&
        (e->nhist == 0 || strcmp(e->hist[e->nhist - 1], e->line.data) != 0)) {
        if (e->nhist == EDIT_HISTORY) {
            free(e->hist[0]);
            memmove(e->hist, e->hist + 1, (EDIT_HISTORY - 1) * sizeof(e->hist[0]));
            e->nhist--;
        }
        e->hist[e->nhist++] = gw_xstrdup(e->line.data);
    }
    e->hist_at = e->nhist;
    GW_FREE_AND_NULL(e->draft);
    set_line(e, "");
}
