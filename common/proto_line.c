/*
 * proto_line.c - framing and command parsing; see proto_line.h.
 *
 * The text form is for people typing into nc: case-insensitive verbs,
 * blank-separated arguments, PUB's text kept byte for byte to the line end.
 * The JSON form is for programs and is decoded by codec_json.
 */
#include "proto_line.h"

#include "codec_json.h"
#include "text.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum proto_frame proto_frame(const char *buf, size_t len, size_t max_line, size_t *line_len,
                             size_t *consumed)
{
    /* Only the first max_line + 2 bytes can hold the end of an acceptable line. */
    size_t scan = len < max_line + 2 ? len : max_line + 2;
    const char *nl = scan ? memchr(buf, '\n', scan) : NULL; /* an empty buffer may be NULL */
    size_t n;

    if (!nl) {
        /* max_line bytes and a CR may still be a line whose LF is on its way. */
        bool may_fit = len <= max_line || (len == max_line + 1 && buf[max_line] == '\r');
        return may_fit ? PROTO_NEED_MORE : PROTO_TOO_LONG;
    }
    n = (size_t)(nl - buf);
    *consumed = n + 1;
    if (n && buf[n - 1] == '\r')
        n--;
    if (n > max_line)
        return PROTO_TOO_LONG;
    *line_len = n;
    return PROTO_LINE;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Cuts the next blank-separated word off (*p, *n); false when none is left. */
static bool next_word(const char **p, size_t *n, const char **word, size_t *wlen)
{
    while (*n && blank(**p)) {
        (*p)++;
        (*n)--;
    }
    if (!*n)
        return false;
    *word = *p;
    while (*n && !blank(**p)) {
        (*p)++;
        (*n)--;
    }
    *wlen = (size_t)(*p - *word);
    return true;
}

/*
 * A word of the line as an error shows it, its first 40 bytes: a NUL in it,
 * which would end the message there, is written \0.
 */
#define SHOWN_MAX 40
static const char *shown(const char *w, size_t wlen, char out[2 * SHOWN_MAX + 1])
{
    size_t k = 0;

    for (size_t i = 0; i < wlen && i < SHOWN_MAX; i++) {
        if (w[i] == '\0') {
            out[k++] = '\\';
            out[k++] = '0';
        } else {
            out[k++] = w[i];
        }
    }
    out[k] = '\0';
    return out;
}

static enum gw_err parse_number(const char *w, size_t wlen, const char *what, uint64_t *out,
                                char why[GW_ERRLEN])
{
    char tmp[24], show[2 * SHOWN_MAX + 1];

    /* A NUL would end the C string early and pass "5<NUL>x" off as 5. */
    if (wlen < sizeof(tmp) && !memchr(w, '\0', wlen)) {
        memcpy(tmp, w, wlen);
        tmp[wlen] = '\0';
        if (text_parse_u64(tmp, INT64_MAX, out))
            return GW_OK;
    }
    snprintf(why, GW_ERRLEN, "%s must be a non-negative integer, got '%s'", what,
             shown(w, wlen, show));
    return GW_E_PARAM;
}

static enum gw_err too_many(enum proto_op op, char why[GW_ERRLEN])
{
    snprintf(why, GW_ERRLEN, "too many arguments for %s (see HELP)", proto_op_name(op));
    return GW_E_PARAM;
}

static enum gw_err parse_text(const char *p, size_t n, struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    const char *verb, *w;
    size_t vlen, wlen;
    enum gw_err err;

    if (!next_word(&p, &n, &verb, &vlen))
        return GW_OK; /* blank line */
    for (unsigned i = 1; i < PROTO__COUNT; i++) {
        const char *name = proto_op_name((enum proto_op)i);
        if (strlen(name) == vlen && strncasecmp(name, verb, vlen) == 0) {
            cmd->op = (enum proto_op)i;
            break;
        }
    }
    /* What a person types to leave a shell ends a session too. */
    if (cmd->op == PROTO_NONE && vlen == 4 && strncasecmp(verb, "exit", 4) == 0)
        cmd->op = PROTO_QUIT;
    if (cmd->op == PROTO_NONE) {
        char show[2 * SHOWN_MAX + 1];
        snprintf(why, GW_ERRLEN, "unknown command '%s' (try HELP)", shown(verb, vlen, show));
        return GW_E_UNKNOWN_COMMAND;
    }

    switch (cmd->op) {
    case PROTO_PUB:
        if (!next_word(&p, &n, &cmd->channel, &cmd->channel_len)) {
            snprintf(why, GW_ERRLEN, "PUB needs a channel and a text: PUB <channel> <text>");
            return GW_E_MISSING_ARGUMENT;
        }
        while (n && blank(*p)) {
            p++;
            n--;
        }
        if (!n) {
            snprintf(why, GW_ERRLEN, "PUB needs a text after the channel: PUB <channel> <text>");
            return GW_E_MISSING_ARGUMENT;
        }
        cmd->body = p;
        cmd->body_len = n;
        return GW_OK;
    case PROTO_SUB:
    case PROTO_UNSUB:
    case PROTO_HIST:
        if (!next_word(&p, &n, &cmd->channel, &cmd->channel_len)) {
            /* The verb as the usage writes it, as PUB's own messages do. */
            snprintf(why, GW_ERRLEN, "%s needs a channel (see HELP)",
                     cmd->op == PROTO_SUB     ? "SUB"
                     : cmd->op == PROTO_UNSUB ? "UNSUB"
                                              : "HIST");
            return GW_E_MISSING_ARGUMENT;
        }
        if (cmd->op != PROTO_UNSUB && next_word(&p, &n, &w, &wlen)) {
            if ((err = parse_number(w, wlen, "since", &cmd->since, why)) != GW_OK)
                return err;
            cmd->has_since = true;
        }
        if (cmd->op == PROTO_HIST && next_word(&p, &n, &w, &wlen)) {
            if ((err = parse_number(w, wlen, "limit", &cmd->limit, why)) != GW_OK)
                return err;
            cmd->has_limit = true;
        }
        break;
    case PROTO_CHANNELS:
        /* The first page has no after: the text form cannot give it a limit. */
        if (next_word(&p, &n, &cmd->after, &cmd->after_len) && next_word(&p, &n, &w, &wlen)) {
            if ((err = parse_number(w, wlen, "limit", &cmd->limit, why)) != GW_OK)
                return err;
            cmd->has_limit = true;
        }
        break;
    case PROTO_NAME:
        /* The rest of the line, blanks inside kept: "NAME Ana Lopez". */
        while (n && blank(*p)) {
            p++;
            n--;
        }
        while (n && blank(p[n - 1]))
            n--;
        if (!n) {
            snprintf(why, GW_ERRLEN, "NAME needs a name: NAME <name>");
            return GW_E_MISSING_ARGUMENT;
        }
        cmd->sender = p;
        cmd->sender_len = n;
        return GW_OK;
    case PROTO_PING:
        if (next_word(&p, &n, &cmd->token, &cmd->token_len) && cmd->token_len > PROTO_TOKEN_MAX) {
            snprintf(why, GW_ERRLEN, "a PING token is at most %d bytes", PROTO_TOKEN_MAX);
            return GW_E_PARAM;
        }
        break;
    default:
        break;
    }
    if (next_word(&p, &n, &w, &wlen))
        return too_many(cmd->op, why);
    return GW_OK;
}

enum gw_err proto_parse(const char *line, size_t len, struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    size_t i = 0;

    memset(cmd, 0, sizeof(*cmd));
    if (!text_utf8_valid(line, len)) {
        snprintf(why, GW_ERRLEN, "the line is not valid UTF-8");
        return GW_E_UTF8;
    }
    while (i < len && blank(line[i]))
        i++;
    if (i < len && line[i] == '{')
        return codec_cmd_decode(line + i, len - i, cmd, why);
    cmd->text_form = true;
    return parse_text(line + i, len - i, cmd, why);
}
