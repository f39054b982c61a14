/*
 * gwbench_progress.c - progress and messages on stderr; see
 * gwbench_progress.h.
 */
#include "gwbench_progress.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#define PROGRESS_AFTER_NS (2 * 1000000000LL)
#define PROGRESS_EVERY_NS (200 * 1000000LL)

static struct {
    int64_t t0;       /* the start of the whole run */
    int64_t last;     /* the last time a line was drawn */
    bool shown;       /* a line is on the screen */
    bool expect_long; /* the run is expected to last over 2 s */
    int index, count; /* the style running, of how many */
} prog;

void gwbench_progress_begin(const struct gwbench_opts *o, int count)
{
    prog.t0 = client_now_ns();
    prog.count = count;
    prog.index = 0;
    prog.expect_long = !o->messages && o->duration_s * count > 2.0;
}

void gwbench_progress_next(void)
{
    prog.index++;
}

void gwbench_progress_end(void)
{
    if (prog.shown)
        fputs("\r\033[K", stderr);
    prog.shown = false;
}

void gwbench_progress(const struct gwbench_opts *o, const char *style, bool delivery,
                      int64_t t_start_ns, uint64_t done, uint64_t total)
{
    int64_t now;
    char line[160];
    double el;

    if (!o->progress)
        return;
    now = client_now_ns();
    if (now - prog.last < PROGRESS_EVERY_NS)
        return;
    if (!prog.expect_long && now - prog.t0 < PROGRESS_AFTER_NS)
        return;
    prog.last = now;
    el = now > t_start_ns ? (double)(now - t_start_ns) / 1e9 : 0.0;
    if (total)
        snprintf(line, sizeof(line),
                 "gwbench: [%d/%d] %-15s %5.1f s  %" PRIu64 " of %" PRIu64 " %s", prog.index,
                 prog.count, style, el, done, total, delivery ? "deliveries" : "messages");
    else
        snprintf(line, sizeof(line), "gwbench: [%d/%d] %-15s %5.1f of %g s  %" PRIu64 " %s",
                 prog.index, prog.count, style, el, o->duration_s, done,
                 delivery ? "deliveries" : "messages");
    fprintf(stderr, "\r\033[K%s", line);
    prog.shown = true;
}

void gwbench_status(const char *fmt, ...)
{
    va_list ap;

    gwbench_progress_end();
    fputs("gwbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
