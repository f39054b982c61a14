/*
 * gwsh_edit.h - a small line editor for gwsh's shell: the terminal in raw
 * mode, one input line with a cursor, and the one trick gwsh needs from it:
 * hiding the line while an asynchronous line is printed, then drawing it
 * again, so that pushes never mangle what is being typed.
 *
 * Depends on common/ (buf, text) and libc (termios). It does no I/O of its
 * own on the terminal except the mode switch: keys are fed in byte by byte,
 * and what to draw is appended to a caller's buffer, which the caller writes
 * out (so that hiding, printing and redrawing go out in one write).
 *
 * Keys: printable UTF-8, Backspace, Delete, Left/Right, Home/End (and
 * Ctrl-A/E/B/F), Ctrl-U/K/W (kill to start, to end, a word), Ctrl-C (clear
 * the line), Ctrl-D (end of input on an empty line, else delete), Ctrl-L
 * (clear the screen), Up/Down (earlier lines of this run), Enter.
 */
#ifndef GWSH_EDIT_H
#define GWSH_EDIT_H

#include "buf.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

/*
 * Longest line the editor holds, in bytes. Keys past it ring the bell once
 * and are dropped (counted in dropped), and the line is not to be sent.
 */
#define EDIT_LINE_MAX (1024 * 1024)
/* Lines kept for Up/Down. */
#define EDIT_HISTORY  100

enum edit_state { EDIT_S_TEXT, EDIT_S_ESC, EDIT_S_CSI, EDIT_S_SS3 };

struct edit {
    int fd; /* the terminal: read from, drawn on, its size asked */
    struct termios saved;
    bool raw;
    const char *prompt;  /* borrowed; printable ASCII */
    struct buf line;     /* printable UTF-8 only */
    size_t pos;          /* the cursor: a byte offset at a character boundary */
    bool shown;          /* prompt and line are on the screen */
    bool dirty;          /* the line changed since it was drawn */
    unsigned cursor_row; /* rows from the prompt's first row to the cursor, as drawn */
    /* input decoding */
    enum edit_state state;
    bool after_cr; /* the last byte was a CR */
    char seq[16];
    size_t seq_len;
    unsigned char utf[4];
    size_t utf_len, utf_need;
    /* history: oldest first; hist_at == nhist while editing a new line */
    char *hist[EDIT_HISTORY];
    size_t nhist, hist_at;
    char *draft; /* the new line, kept while Up/Down show older ones */
    /* bytes typed past EDIT_LINE_MAX into this line (0: the line is whole), and the draft's */
    size_t dropped, draft_dropped;
};

enum edit_result {
    EDIT_MORE, /* keep feeding */
    EDIT_LINE, /* Enter: the line is in e->line (see edit_done); e->dropped > 0:
                  it went past EDIT_LINE_MAX, and must not be sent cut */
    EDIT_EOF   /* Ctrl-D on an empty line */
};

/*
 * Puts the terminal fd into raw mode (no echo, no line discipline, no
 * signals from keys; output processing kept, so LF still starts a new line).
 * Returns 0, or -1 with the reason in err. prompt is borrowed for e's life.
 */
int edit_start(struct edit *e, int fd, const char *prompt, char err[GW_ERRLEN]);

/* Gives the terminal back as it was and frees e's memory. Safe to call twice. */
void edit_stop(struct edit *e);

/*
 * Feeds one byte of input. Drawing that must happen at once (the line left
 * on the screen at Enter) is appended to screen; other changes only mark
 * the line dirty for edit_refresh.
 */
enum edit_result edit_key(struct edit *e, unsigned char c, struct buf *screen);

/* Redraws the line if it changed (call after feeding a batch of keys). */
void edit_refresh(struct edit *e, struct buf *screen);

/* Takes the line off the screen (before printing something else). */
void edit_hide(struct edit *e, struct buf *screen);

/* Draws prompt and line, cursor in place (after printing something else). */
void edit_show(struct edit *e, struct buf *screen);

/* After EDIT_LINE, once the line is used: keeps it for Up and starts an empty one. */
void edit_done(struct edit *e);

#endif
