/*
 * gwsh.c - the live-session client of visavis: an interactive shell over one
 * TCP session (docs/protocol.md), -c for scripts that send commands and
 * check their replies, and --sub (gwsh_sub.c) to follow a channel.
 *
 * The shell prints pushes and replies as they arrive without mangling the
 * line being typed: the terminal is in raw mode, the line lives in the
 * editor (gwsh_edit.c), and every asynchronous line is printed by hiding
 * the typed line, printing, and drawing the line again. It talks to the
 * gateway only through the protocol, never through gateway code; it uses
 * common/ for the connection and the reading of server lines (client_conn,
 * server_line), the framing of commands it must recognise (proto_parse,
 * the server's own parser), and the checks of names.
 */
#include "gwsh_opts.h"

#include "client_conn.h"
#include "client_text.h"
#include "gwsh_edit.h"
#include "gwsh_show.h"
#include "gwsh_sig.h"
#include "gwsh_sub.h"
#include "model.h"
#include "net.h"
#include "proto_line.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROMPT             "gwsh> "
#define DEFAULT_TIMEOUT_MS 10000
/*
 * After QUIT, how long the server gets to say bye and close: in all, from
 * the QUIT, so that a server that keeps talking cannot keep gwsh waiting.
 */
#define QUIT_GRACE_MS      3000
/* /ping round trips remembered at once; an older one past this is forgotten. */
#define PING_SLOTS         64
#define PING_PREFIX        "gwsh-"
#define STDIN_CHUNK        4096

/* Writes all of (p, len) to fd; false if it could not. */
static bool write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* ---- what the user types ---- */

/* The command a line is, as the server reads it (proto_parse); PROTO__COUNT: none (an error). */
static enum proto_op command_op(const char *line, size_t len)
{
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    enum proto_op op = proto_parse(line, len, &cmd, why) == GW_OK ? cmd.op : PROTO__COUNT;

    proto_cmd_release(&cmd);
    return op;
}

/* True when the server answers a command of op: not a blank line, not PONG. */
static bool expects_reply(enum proto_op op)
{
    return op != PROTO_NONE && op != PROTO_PONG;
}

/*
 * Whether l is the answer with which a command of op succeeded: its ok
 * (of the same op when the ok names one), the pong of a PING, the bye of a
 * QUIT. Anything else, an error, a bye at the server's shutdown, another
 * command's ok, is not.
 */
static bool reply_succeeds(enum proto_op op, const struct server_line *l)
{
    switch (op) {
    case PROTO_PING:
        return l->type == SL_PONG;
    case PROTO_QUIT:
        return l->type == SL_BYE;
    case PROTO__COUNT:
        return false;
    default:
        return l->type == SL_OK && (l->op == PROTO_NONE || l->op == op);
    }
}

/*
 * The server answers a HELP in text form with plain lines, as many as it
 * has, which a client waiting for one reply cannot tell from the replies
 * that follow; the JSON form is one reply, shown as "ok help" and the
 * lines. A line to send in place of line, or line itself.
 */
static const char *wire_form(const char *line, size_t *len)
{
    static const char json_help[] = "{\"op\":\"help\"}";
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    size_t i = 0;

    while (i < *len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == *len || line[i] == '{')
        return line;
    bool help = proto_parse(line, *len, &cmd, why) == GW_OK && cmd.op == PROTO_HELP && !cmd.tag;
    proto_cmd_release(&cmd);
    if (!help)
        return line;
    *len = sizeof(json_help) - 1;
    return json_help;
}

enum local_cmd { LOCAL_NONE, LOCAL_PING, LOCAL_QUIT, LOCAL_HELP, LOCAL_UNKNOWN };

/* A line that starts with '/' is for gwsh itself. */
static enum local_cmd local_command(const char *line, size_t len)
{
    static const struct {
        const char *name;
        enum local_cmd cmd;
    } names[] = {{"/ping", LOCAL_PING}, {"/quit", LOCAL_QUIT}, {"/help", LOCAL_HELP}};
    size_t i = 0, end;

    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] != '/')
        return LOCAL_NONE;
    end = len;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    for (size_t k = 0; k < GW_ARRAY_SIZE(names); k++) {
        if (strlen(names[k].name) == end - i && memcmp(names[k].name, line + i, end - i) == 0)
            return names[k].cmd;
    }
    return LOCAL_UNKNOWN;
}

static const char shell_help[] =
    "Type a command and press Enter: it goes to the server as one line, and its reply\n"
    "and every push are printed as they arrive (HELP asks the server for its commands).\n"
    "  /ping   the round trip to the server, in microseconds\n"
    "  /quit   end the session (also Ctrl-D on an empty line)\n"
    "  /help   this text\n"
    "Keys: Left/Right, Home/End, Up/Down (earlier lines), Backspace, Delete,\n"
    "Ctrl-U/K/W (erase to the start, to the end, a word), Ctrl-C (clear the line),\n"
    "Ctrl-L (clear the screen).\n";

/* ---- pings ---- */

struct pings {
    uint64_t next;
    struct {
        uint64_t n;
        int64_t sent_ns; /* 0: free */
    } slot[PING_SLOTS];
};

/* Queues PING gwsh-<n> on c and notes when it left. */
static void ping_send(struct pings *p, struct client_conn *c)
{
    char line[64];
    uint64_t n = ++p->next;
    int len = snprintf(line, sizeof(line), "PING " PING_PREFIX "%" PRIu64, n);

    p->slot[n % PING_SLOTS].n = n;
    p->slot[n % PING_SLOTS].sent_ns = client_now_ns();
    client_conn_send_line(c, line, (size_t)len);
}

/* The round trip of the pong to one of our pings, in µs; -1 for any other. */
static int64_t ping_rtt(struct pings *p, const struct server_line *l)
{
    const size_t plen = strlen(PING_PREFIX);
    char digits[24];
    uint64_t n;
    int64_t now = client_now_ns();

    if (l->type != SL_PONG || !l->token.s || l->token.len <= plen ||
        l->token.len - plen >= sizeof(digits) || memcmp(l->token.s, PING_PREFIX, plen) != 0)
        return -1;
    memcpy(digits, l->token.s + plen, l->token.len - plen);
    digits[l->token.len - plen] = '\0';
    if (!text_parse_u64(digits, UINT64_MAX, &n))
        return -1;
    if (p->slot[n % PING_SLOTS].n != n || !p->slot[n % PING_SLOTS].sent_ns)
        return -1;
    now -= p->slot[n % PING_SLOTS].sent_ns;
    p->slot[n % PING_SLOTS].sent_ns = 0;
    return now / 1000;
}

/*
 * A server line as the user sees it: with --json the line, as the same JSON
 * but with no control character raw (a server other than a gateway may send
 * C1 or DEL raw, which JSON allows and some terminals obey), else text;
 * the pong to a /ping also gets its round trip. Appends to out.
 */
static void show_line(const struct gwsh_opts *o, struct pings *p, const struct server_line *l,
                      const char *raw, size_t raw_len, struct buf *out)
{
    int64_t rtt = ping_rtt(p, l);

    if (o->json) {
        client_text_json_safe(out, raw, raw_len);
        buf_append(out, "\n", 1);
    } else if (rtt < 0) {
        gwsh_show_line(l, raw, raw_len, out);
    }
    if (rtt >= 0) {
        char tmp[64];
        int n = snprintf(tmp, sizeof(tmp), "pong %" PRId64 " us\n", rtt);
        buf_append(out, tmp, (size_t)n);
    }
}

/* "connected to <addr> (visavis 0.1.0, session …, heartbeat 30 s)" */
static void show_hello(const struct gwsh_opts *o, const struct server_line *l, const char *raw,
                       size_t raw_len, struct buf *out)
{
    char tmp[64];

    if (o->json) {
        client_text_json_safe(out, raw, raw_len);
        buf_append(out, "\n", 1);
        return;
    }
    buf_append(out, "connected to ", 13);
    buf_append(out, o->addr, strlen(o->addr));
    buf_append(out, " (", 2);
    client_text_safe(out, l->server.s ? l->server.s : "?", l->server.s ? l->server.len : 1);
    buf_append(out, ", session ", 10);
    client_text_safe(out, l->session.s ? l->session.s : "?", l->session.s ? l->session.len : 1);
    snprintf(tmp, sizeof(tmp), ", heartbeat %" PRId64 " s); /help for help\n", l->heartbeat);
    buf_append(out, tmp, strlen(tmp));
}

/* ---- the shell ---- */

struct shell {
    const struct gwsh_opts *o;
    struct client_conn c;
    struct pings pings;
    bool tty; /* the editor runs (stdin and stdout are a terminal) */
    struct edit e;
    struct buf screen; /* what goes to stdout at the end of this turn */
    struct buf typed;  /* without a terminal: stdin bytes not yet a whole line */
    bool stdin_eof;
    bool got_hello;
    bool quitting; /* QUIT sent: the server's close is expected */
    int64_t quit_deadline_ns;
    unsigned awaiting; /* commands sent whose reply has not come (QUIT's bye is none) */
    unsigned errors;   /* error replies */
};

/* Unsent bytes past which stdin is no longer read: a server that does not read bounds gwsh. */
#define SHELL_UNSENT_MAX (1u << 20)

/* Something to print while the user may be typing: the line is hidden first. */
static struct buf *shell_out(struct shell *sh)
{
    if (sh->tty)
        edit_hide(&sh->e, &sh->screen);
    return &sh->screen;
}

/* A note from gwsh itself: in the flow of the screen on a terminal, else on stderr. */
static void shell_note(struct shell *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void shell_note(struct shell *sh, const char *fmt, ...)
{
    char tmp[GW_ERRLEN + 128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(tmp))
        n = (int)sizeof(tmp) - 1;
    if (sh->tty) {
        struct buf *out = shell_out(sh);
        buf_append(out, "gwsh: ", 6);
        buf_append(out, tmp, (size_t)n);
        buf_append(out, "\n", 1);
    } else {
        gwsh_status("%s", tmp);
    }
}

static void shell_quit(struct shell *sh)
{
    if (sh->quitting)
        return;
    sh->quitting = true;
    sh->quit_deadline_ns = client_now_ns() + (int64_t)QUIT_GRACE_MS * 1000000;
    client_conn_send_line(&sh->c, "QUIT", 4);
}

/* One line the user entered. */
static void shell_line(struct shell *sh, const char *line, size_t len)
{
    if (sh->quitting)
        return;
    switch (local_command(line, len)) {
    case LOCAL_PING:
        ping_send(&sh->pings, &sh->c);
        sh->awaiting++;
        return;
    case LOCAL_QUIT:
        shell_quit(sh);
        return;
    case LOCAL_HELP:
        buf_append(shell_out(sh), shell_help, strlen(shell_help));
        return;
    case LOCAL_UNKNOWN:
        shell_note(sh, "unknown command %.*s (try /help; server commands have no '/')",
                   (int)(len > 40 ? 40 : len), line);
        return;
    case LOCAL_NONE:
        break;
    }
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return; /* the server ignores blank lines: spare it them */
    size_t wire_len = len;
    const char *wire = wire_form(line, &wire_len);
    enum proto_op op = command_op(line, len);
    client_conn_send_line(&sh->c, wire, wire_len);
    if (expects_reply(op) && op != PROTO_QUIT)
        sh->awaiting++; /* a bye is a farewell, counted as no command's answer */
    if (op == PROTO_QUIT) {
        sh->quitting = true;
        sh->quit_deadline_ns = client_now_ns() + (int64_t)QUIT_GRACE_MS * 1000000;
    }
}

/* Keys from the terminal. */
static void shell_keys(struct shell *sh, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !sh->quitting; i++) {
        switch (edit_key(&sh->e, (unsigned char)p[i], &sh->screen)) {
        case EDIT_MORE:
            break;
        case EDIT_LINE:
            /* A line cut at the editor's limit is not what was typed: never send it. */
            if (sh->e.dropped)
                shell_note(sh, "line longer than %d MiB (%zu bytes) not sent", EDIT_LINE_MAX >> 20,
                           sh->e.line.len + sh->e.dropped);
            else
                shell_line(sh, sh->e.line.data, sh->e.line.len);
            edit_done(&sh->e);
            break;
        case EDIT_EOF:
            shell_quit(sh);
            break;
        }
    }
}

/* Lines from a stdin that is not a terminal. */
static void shell_plain_input(struct shell *sh, const char *p, size_t n, bool eof)
{
    size_t start = 0;
    char *nl;

    buf_append(&sh->typed, p, n);
    while (sh->typed.len > start &&
           (nl = memchr(sh->typed.data + start, '\n', sh->typed.len - start)) != NULL) {
        size_t len = (size_t)(nl - (sh->typed.data + start));
        if (len && sh->typed.data[start + len - 1] == '\r')
            len--;
        shell_line(sh, sh->typed.data + start, len);
        start = (size_t)(nl - sh->typed.data) + 1;
    }
    if (eof && start < sh->typed.len) {
        shell_line(sh, sh->typed.data + start, sh->typed.len - start);
        start = sh->typed.len;
    }
    memmove(sh->typed.data, sh->typed.data + start, sh->typed.len - start);
    sh->typed.len -= start;
    if (sh->typed.data)
        sh->typed.data[sh->typed.len] = '\0';
    if (eof)
        shell_quit(sh); /* after the replies to everything sent */
}

/* One line from the server. */
static void shell_server_line(struct shell *sh, const char *raw, size_t len)
{
    struct server_line l;

    server_line_parse(&l, raw, len);
    if (!sh->got_hello && l.type == SL_HELLO) {
        sh->got_hello = true;
        sh->c.line_max = CLIENT_LINE_MAX; /* greeted: replies may be as long as a HIST page */
        show_hello(sh->o, &l, raw, len, shell_out(sh));
    } else {
        if (!sl_type_is_push(l.type) && l.type != SL_HELLO && l.type != SL_BYE) {
            /*
             * A reply, in command order: the answer to the oldest command
             * still waiting. A bye answers none: after QUIT, or at the
             * server's shutdown, when what is still waiting is lost.
             */
            if (sh->awaiting)
                sh->awaiting--;
            if (l.type == SL_ERROR || l.type == SL_INVALID)
                sh->errors++;
        }
        if (l.type == SL_PING && !sh->o->json) {
            server_line_release(&l);
            return; /* nothing to show: keep the line undisturbed */
        }
        show_line(sh->o, &sh->pings, &l, raw, len, shell_out(sh));
    }
    server_line_release(&l);
}

/* Sends what stdout owes the terminal; draws the line again if it was hidden. */
static bool shell_flush_screen(struct shell *sh)
{
    bool ok;

    if (sh->tty && !sh->quitting)
        edit_refresh(&sh->e, &sh->screen);
    ok = write_all(STDOUT_FILENO, sh->screen.data ? sh->screen.data : "", sh->screen.len);
    buf_clear(&sh->screen);
    return ok;
}

static int run_shell(const struct gwsh_opts *o)
{
    struct shell sh;
    char err[GW_ERRLEN], chunk[STDIN_CHUNK];
    int status = GWSH_EXIT_OK;

    memset(&sh, 0, sizeof(sh));
    sh.o = o;
    client_conn_init(&sh.c, NULL);
    sh.c.line_max = GWSH_GREETING_MAX;
    buf_init(&sh.screen);
    buf_init(&sh.typed);
    if (gwsh_connect(&sh.c, o->addr, o->timeout_ms, err) < 0) {
        if (gwsh_stop)
            return GWSH_EXIT_OK;
        gwsh_status("%s", err);
        return GWSH_EXIT_CONNECT;
    }
    /*
     * Nothing is read from stdin before the greeting: sent at once, the
     * lines and their QUIT would reach whatever listens there (an HTTP
     * port, say), whose close then looked like the end of a session.
     */
    int64_t hello_deadline = client_now_ns() + (int64_t)o->timeout_ms * 1000000;
    if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
        if (edit_start(&sh.e, STDIN_FILENO, PROMPT, err) == 0)
            sh.tty = true;
        else
            gwsh_status("%s: reading lines without editing", err);
    }

    for (;;) {
        struct pollfd pfd[2];
        nfds_t nfds = 0;
        int timeout = -1, rc, in_idx = -1;

        if (client_conn_flush(&sh.c, err) < 0) {
            shell_note(&sh, "connection to %s lost: %s", o->addr, err);
            status = GWSH_EXIT_ERROR;
            break;
        }
        if (!shell_flush_screen(&sh)) {
            gwsh_status("writing to stdout: %s", strerror(errno));
            status = GWSH_EXIT_ERROR;
            break;
        }
        pfd[nfds].fd = sh.c.fd;
        pfd[nfds].events = (short)(POLLIN | (client_conn_want_write(&sh.c) ? POLLOUT : 0));
        nfds++;
        if (sh.got_hello && !sh.stdin_eof && !sh.quitting &&
            sh.c.out.len - sh.c.out_off < SHELL_UNSENT_MAX) {
            in_idx = (int)nfds;
            pfd[nfds].fd = STDIN_FILENO;
            pfd[nfds].events = POLLIN;
            nfds++;
        }
        if (sh.quitting)
            timeout = gwsh_ms_until(sh.quit_deadline_ns);
        else if (!sh.got_hello)
            timeout = gwsh_ms_until(hello_deadline);
        rc = gwsh_poll(pfd, nfds, timeout);
        if (rc < 0) {
            if (errno == EINTR && !gwsh_stop)
                continue;
            if (!gwsh_stop) {
                shell_note(&sh, "poll: %s", strerror(errno));
                status = GWSH_EXIT_ERROR;
            }
            break; /* a stop signal: leave quietly */
        }
        /* Deadlines hold whatever comes meanwhile: a server may talk without end. */
        if (sh.quitting && client_now_ns() >= sh.quit_deadline_ns)
            break; /* the server did not close in time: we do */
        if (!sh.got_hello && client_now_ns() >= hello_deadline) {
            shell_note(&sh, "cannot open a session at %s: no greeting within %d ms", o->addr,
                       o->timeout_ms);
            status = GWSH_EXIT_CONNECT;
            break;
        }

        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            rc = client_conn_fill(&sh.c, err);
            if (rc < 0) {
                shell_note(&sh, "connection to %s lost: %s", o->addr, err);
                status = sh.got_hello ? GWSH_EXIT_ERROR : GWSH_EXIT_CONNECT;
                break;
            }
            char *line;
            size_t len;
            enum client_line got;
            while ((got = client_conn_line(&sh.c, &line, &len)) == CLIENT_LINE)
                shell_server_line(&sh, line, len);
            if (got == CLIENT_TOO_LONG) {
                shell_note(&sh, "%s sent a line longer than %zu bytes", o->addr, sh.c.line_max);
                status = sh.got_hello ? GWSH_EXIT_ERROR : GWSH_EXIT_CONNECT;
                break;
            }
            if (rc == 0) {
                if (!sh.got_hello) {
                    shell_note(&sh,
                               "cannot open a session at %s: the server closed the connection "
                               "before its greeting",
                               o->addr);
                    status = GWSH_EXIT_CONNECT;
                } else if (!sh.quitting) {
                    shell_note(&sh, "the server closed the connection");
                    status = GWSH_EXIT_ERROR;
                }
                break;
            }
        }
        if (in_idx >= 0 && pfd[in_idx].revents) {
            ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                sh.stdin_eof = true;
            if (sh.tty) {
                if (n > 0)
                    shell_keys(&sh, chunk, (size_t)n);
                else
                    shell_quit(&sh);
            } else {
                shell_plain_input(&sh, chunk, n > 0 ? (size_t)n : 0, n <= 0);
            }
            if (sh.quitting && sh.tty)
                edit_hide(&sh.e, &sh.screen);
        }
    }

    if (!sh.tty && status == GWSH_EXIT_OK && !gwsh_stop) {
        /* For scripts, as -c: every command answered, none with an error. */
        if (sh.awaiting) {
            shell_note(&sh, "the session ended with %u command%s unanswered", sh.awaiting,
                       sh.awaiting == 1 ? "" : "s");
            status = GWSH_EXIT_ERROR;
        } else if (sh.errors) {
            status = GWSH_EXIT_ERROR;
        }
    }
    if (sh.tty)
        edit_hide(&sh.e, &sh.screen);
    write_all(STDOUT_FILENO, sh.screen.data ? sh.screen.data : "", sh.screen.len);
    if (sh.tty)
        edit_stop(&sh.e);
    client_conn_release(&sh.c);
    buf_release(&sh.screen);
    buf_release(&sh.typed);
    return status;
}

/* ---- -c ---- */

/*
 * Waits for the next reply (pushes are skipped) and parses it into *l. Returns
 * 1, 0 when the connection ended first, -1 on timeout, signal or error (the
 * reason in err).
 */
static int next_reply(struct client_conn *c, int timeout_ms, bool want_hello, struct server_line *l,
                      char **raw, size_t *raw_len, char err[GW_ERRLEN])
{
    int64_t deadline = client_now_ns() + (int64_t)timeout_ms * 1000000;

    for (;;) {
        enum client_line got;

        while ((got = client_conn_line(c, raw, raw_len)) == CLIENT_LINE) {
            server_line_parse(l, *raw, *raw_len);
            /* The greeting, or an error in its place (too_many_sessions). */
            if (want_hello || (!sl_type_is_push(l->type) && l->type != SL_HELLO))
                return 1;
            server_line_release(l);
        }
        if (got == CLIENT_TOO_LONG) {
            snprintf(err, GW_ERRLEN, "the server sent a line longer than %zu bytes", c->line_max);
            return -1;
        }
        if (c->eof)
            return 0;
        if (client_conn_wait(c, deadline, gwsh_sig_wait_mask(), err) < 0) {
            if (errno == EINTR && !gwsh_stop)
                continue;
            if (client_now_ns() >= deadline)
                snprintf(err, GW_ERRLEN, "no %s within %d ms", want_hello ? "greeting" : "reply",
                         timeout_ms);
            return -1;
        }
        if (gwsh_sig_deliver()) {
            snprintf(err, GW_ERRLEN, "interrupted");
            return -1;
        }
    }
}

static int run_commands(const struct gwsh_opts *o)
{
    struct client_conn c;
    struct pings pings;
    struct server_line l;
    struct buf out = BUF_INIT;
    char err[GW_ERRLEN], *raw;
    size_t raw_len, quit_at;
    int rc, status = GWSH_EXIT_OK;

    memset(&pings, 0, sizeof(pings));
    quit_at = o->ncmds; /* none */
    client_conn_init(&c, NULL);
    c.line_max = GWSH_GREETING_MAX;
    if (gwsh_connect(&c, o->addr, o->timeout_ms, err) < 0) {
        gwsh_status("%s", err);
        client_conn_release(&c);
        return gwsh_stop ? GWSH_EXIT_ERROR : GWSH_EXIT_CONNECT;
    }
    rc = next_reply(&c, o->timeout_ms, true, &l, &raw, &raw_len, err);
    if (rc <= 0 || l.type != SL_HELLO) {
        if (rc > 0) {
            gwsh_show_line(&l, raw, raw_len, &out);
            if (out.len && out.data[out.len - 1] == '\n')
                out.len--;
            gwsh_status("cannot open a session at %s: %s", o->addr,
                        out.len ? out.data : "its first line is no greeting");
            server_line_release(&l);
        } else {
            gwsh_status("cannot open a session at %s: %s", o->addr,
                        rc == 0 ? "the server closed the connection before its greeting" : err);
        }
        client_conn_release(&c);
        buf_release(&out);
        return GWSH_EXIT_CONNECT;
    }
    server_line_release(&l);
    c.line_max = CLIENT_LINE_MAX; /* greeted: replies may be as long as a HIST page */

    for (size_t i = 0; i < o->ncmds; i++) {
        const char *cmd = o->cmds[i];
        size_t len = strlen(cmd);

        enum proto_op op = PROTO_PING; /* /ping: its pong */

        switch (local_command(cmd, len)) {
        case LOCAL_PING:
            ping_send(&pings, &c);
            break;
        case LOCAL_QUIT:
            /* As in the shell: QUIT, and its bye printed. */
            client_conn_send_line(&c, "QUIT", 4);
            op = PROTO_QUIT;
            quit_at = i;
            break;
        case LOCAL_HELP:
            buf_append(&out, shell_help, strlen(shell_help));
            continue;
        case LOCAL_UNKNOWN:
            gwsh_status("unknown command '%s' (try /help)", cmd);
            status = GWSH_EXIT_ERROR;
            continue;
        case LOCAL_NONE: {
            size_t wire_len = len;
            const char *wire = wire_form(cmd, &wire_len);
            op = command_op(cmd, len);
            client_conn_send_line(&c, wire, wire_len);
            if (!expects_reply(op))
                continue;
            break;
        }
        }
        /* Print what is there before waiting, so a slow reply does not hold back the others. */
        fwrite(out.data ? out.data : "", 1, out.len, stdout);
        fflush(stdout);
        buf_clear(&out);
        rc = next_reply(&c, o->timeout_ms, false, &l, &raw, &raw_len, err);
        if (rc <= 0) {
            gwsh_status("no reply to '%s': %s", cmd,
                        rc == 0 ? "the server closed the connection" : err);
            status = GWSH_EXIT_ERROR;
            break;
        }
        show_line(o, &pings, &l, raw, raw_len, &out);
        if (!reply_succeeds(op, &l)) {
            if (l.type != SL_ERROR && l.type != SL_INVALID)
                gwsh_status("'%.60s' was not answered with its ok", cmd);
            status = GWSH_EXIT_ERROR;
        }
        server_line_release(&l);
        if (quit_at == i)
            break;
    }
    /*
     * The session ends at /quit: a command after it is not sent, and a
     * script must not take it for done, as with one left unanswered.
     */
    for (size_t i = quit_at + 1; quit_at < o->ncmds && i < o->ncmds; i++) {
        gwsh_status("'%s' not sent: it comes after /quit", o->cmds[i]);
        status = GWSH_EXIT_ERROR;
    }
    if (client_conn_flush(&c, err) < 0 && status == GWSH_EXIT_OK) {
        gwsh_status("sending to %s: %s", o->addr, err);
        status = GWSH_EXIT_ERROR;
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (fflush(stdout) != 0) {
        gwsh_status("writing to stdout: %s", strerror(errno));
        status = GWSH_EXIT_ERROR;
    }
    client_conn_release(&c);
    buf_release(&out);
    return status;
}

/* ---- the command line ---- */

static const char usage_text[] =
    "usage: gwsh [--json] [host:port]                              the shell\n"
    "       gwsh -c COMMAND [-c COMMAND]... [--json] [host:port]   commands, for scripts\n"
    "       gwsh --sub CHANNEL [--since SEQ] [--text] [host:port]  follow a channel\n"
    "\n"
    "The live-session client of visavis (docs/protocol.md, docs/gwsh.md). The\n"
    "address defaults to $VISAVIS_TCP_ADDR, else " GWSH_DEFAULT_ADDR ".\n"
    "\n"
    "  -c, --command LINE   send LINE, wait for its reply and print it; repeat for\n"
    "                       more (replies come in order, pushes are skipped)\n"
    "      --json           print the server's lines as JSON, not as text\n"
    "      --sub CHANNEL    print each message of CHANNEL as one JSON line, for\n"
    "                       ever; after a lost connection, reconnect and resume\n"
    "                       where it stopped (status on stderr; SIGINT/SIGTERM end it)\n"
    "      --since SEQ      with --sub: start after message SEQ (default: from now)\n"
    "      --text           with --sub: a line per message for a person, with how\n"
    "                       long after its commit it arrived:\n"
    "                       push seq 8 \"hello #8\" 1.2 ms after commit\n"
    "  -t, --timeout SEC    to connect, and for each reply with -c (default 10)\n"
    "  -h, --help           this text\n"
    "      --version        gwsh's version\n"
    "\n"
    "In the shell, a line goes to the server as it is typed (HELP lists the\n"
    "server's commands); /ping, /quit and /help are gwsh's own.\n"
    "\n"
    "Exit status: 0 done; 1 an error reply (-c), a lost connection, or a refused\n"
    "--sub; 2 a bad command line; 3 no session could be opened.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("gwsh: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(gwsh --help for usage)\n", stderr);
    return GWSH_EXIT_USAGE;
}

enum { OPT_JSON = 256, OPT_SUB, OPT_SINCE, OPT_TEXT, OPT_VERSION };

static int parse_args(int argc, char **argv, struct gwsh_opts *o, bool *done)
{
    static const struct option longopts[] = {
        {"command", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, OPT_JSON},
        {"sub", required_argument, NULL, OPT_SUB},
        {"since", required_argument, NULL, OPT_SINCE},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"text", no_argument, NULL, OPT_TEXT},
        {NULL, 0, NULL, 0},
    };
    char host[NET_HOST_MAX], err[GW_ERRLEN];
    const char *env;
    uint64_t v;
    int opt, port;

    *done = false;
    opterr = 0;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->cmds = gw_xcalloc((size_t)argc + 1, sizeof(*o->cmds));
    while ((opt = getopt_long(argc, argv, ":c:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (strchr(optarg, '\n'))
                return usage_error("-c '%s': a command is one line (the JSON form can carry "
                                   "newlines as \\n)",
                                   optarg);
            o->cmds[o->ncmds++] = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_SUB:
            if (!text_channel_valid(optarg, strlen(optarg)))
                return usage_error("--sub '%s': a channel name is 1 to %d of [A-Za-z0-9._-]",
                                   optarg, GW_CHANNEL_MAX);
            o->sub = optarg;
            break;
        case OPT_SINCE:
            if (!text_parse_u64(optarg, INT64_MAX, &v))
                return usage_error("--since '%s': expected a seq (0, 1, 2, ...)", optarg);
            o->has_since = true;
            o->since = (int64_t)v;
            break;
        case OPT_TEXT:
            o->text = true;
            break;
        case 't':
            if (!text_parse_u64(optarg, 86400, &v) || v == 0)
                return usage_error("--timeout '%s': expected whole seconds, 1 to 86400", optarg);
            o->timeout_ms = (int)v * 1000;
            break;
        case 'h':
            fputs(usage_text, stdout);
            *done = true;
            return GWSH_EXIT_OK;
        case OPT_VERSION:
            printf("gwsh (visavis %s), protocol %s version %d\n", VISAVIS_VERSION, PROTO_PROTOCOL,
                   PROTO_VERSION);
            *done = true;
            return GWSH_EXIT_OK;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc - 1)
        return usage_error("one address at most, got '%s' and '%s'", argv[optind],
                           argv[optind + 1]);
    env = getenv("VISAVIS_TCP_ADDR");
    o->addr = optind < argc ? argv[optind] : env && *env ? env : GWSH_DEFAULT_ADDR;
    if (net_split_hostport(o->addr, host, &port, err) < 0)
        return usage_error("address %s", err);
    if (port == 0)
        return usage_error("address '%s': port 0 names no server", o->addr);
    if (o->sub && o->ncmds)
        return usage_error("--sub and -c do not go together");
    if (o->has_since && !o->sub)
        return usage_error("--since goes with --sub");
    if (o->text && !o->sub)
        return usage_error("--text goes with --sub");
    if (o->text && o->json)
        return usage_error("--text and --json do not go together");
    return GWSH_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct gwsh_opts o;
    bool done;
    int rc;

    /*
     * A standard descriptor left closed (gwsh <&-) would be the next one
     * opened, the session's socket: gwsh would read its own socket as
     * stdin, or write its output into it. /dev/null takes its place.
     */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
            open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY) != fd)
            return GWSH_EXIT_USAGE;
    }
    memset(&o, 0, sizeof(o));
    setlocale(LC_CTYPE, ""); /* only to measure typed characters (wcwidth) */
    rc = parse_args(argc, argv, &o, &done);
    if (rc != GWSH_EXIT_OK || done) {
        free(o.cmds);
        return rc;
    }
    gwsh_sig_init();
    if (o.sub)
        rc = gwsh_sub_run(&o);
    else if (o.ncmds)
        rc = run_commands(&o);
    else
        rc = run_shell(&o);
    free(o.cmds);
    return rc;
}
