/*
 * fuzz_sio_packet.c - libFuzzer target for what a Socket.IO client's bytes go
 * through in the gateway (gateway/front_sio.c): eio_payload_next over a
 * polling payload (common/sio_proto.h), sio_packet_parse on each Engine.IO
 * message ('4'), for an EVENT codec_sio_event_line with the ack id as its tag
 * (common/codec_json.h), then proto_parse of the line made, as the session
 * tier does (common/proto_line.h).
 *
 * Input: the body of a polling POST, as is. When it holds a separator, the
 * whole input is also taken as one packet, as a WebSocket message is.
 *
 * Invariants:
 *   - payload: each call advances; a packet starts where the last one ended,
 *     lies inside the payload and holds no separator; the packets joined by
 *     separators are the payload, byte for byte;
 *   - header: GW_OK or GW_E_PARAM, why set on errors; on GW_OK the type is
 *     the first byte (0..6), the namespace starts with '/', is at most
 *     SIO_NSP_MAX printable bytes without ',' inside the header (or is the
 *     default "/"), the data runs to the packet's end and starts with no
 *     digit; header written back canonically -> parse gives the same packet;
 *   - event line: the error jansson alone predicts from the data, with why
 *     set and the buffer untouched; on GW_OK exactly one line appended (no LF,
 *     CR), valid UTF-8, a JSON object of the argument's fields with "op" the
 *     event and "tag" the ack id (the client's own tag dropped);
 *   - session: proto_frame takes that line whole within max_line (TOO_LONG
 *     past it; the line may be longer than the packet: jansson writes 1e-7
 *     as 9.9999999999999995e-08); proto_parse reads it as JSON, with the
 *     event's op and the ack id as tag, and the fields given;
 *   - the error replies (error line, CONNECT_ERROR data) are valid JSON.
 */
#include "buf.h"
#include "codec_json.h"
#include "gw.h"
#include "proto_line.h"
#include "sio_proto.h"
#include "text.h"

#include "fuzz_util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --max-line's default (gateway/config.c): the longest line the framing fronts take. */
#define MAX_LINE (64 * 1024)

static int mem_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether (p, n) lies within (base, len); by address, as the pointers may be unrelated. */
static int inside(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && a - b <= len && n <= len - (a - b);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int json_str_eq(json_t *v, const char *p, size_t n)
{
    return json_is_string(v) && mem_eq(json_string_value(v), json_string_length(v), p, n);
}

static void check_why(enum gw_err err, const char *why)
{
    FUZZ_CHECK((unsigned)err < GW_E__COUNT, "error code in range");
    if (err != GW_OK)
        FUZZ_CHECK(memchr(why, '\0', GW_ERRLEN) != NULL && why[0] != '\0', "why set");
}

/* The answers to a refused packet: the error line (through the session) and a CONNECT_ERROR. */
static void check_refusal(enum gw_err err, const char *why, const char *tag, size_t tag_len)
{
    struct buf b = BUF_INIT;

    codec_line_error(&b, err, why, NULL, tag, tag_len);
    FUZZ_CHECK(b.len > 0 && b.data[b.len - 1] == '\n' && !memchr(b.data, '\n', b.len - 1),
               "the error line is one line");
    json_t *v = json_loadb(b.data, b.len - 1, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(v), "the error line is a JSON object");
    FUZZ_CHECK(json_str_eq(json_object_get(v, "code"), gw_err_code(err), strlen(gw_err_code(err))),
               "the error line's code");
    if (tag)
        FUZZ_CHECK(json_str_eq(json_object_get(v, "tag"), tag, tag_len), "the ack id is echoed");
    json_decref(v);
    buf_clear(&b);

    codec_sio_error_data(&b, why);
    v = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_string(json_object_get(v, "message")),
               "CONNECT_ERROR data is {\"message\":string}");
    json_decref(v);
    buf_release(&b);
}

/* ---- the event: codec_sio_event_line, then the session's proto_parse ---- */

static const char *const events[] = {"sub", "unsub", "pub", "hist", "channels"};

/* What codec_sio_event_line must answer for this data, by jansson alone (codec_json.h). */
static enum gw_err expected(json_t *root, const json_error_t *jerr, const char **event)
{
    json_t *name, *arg;

    *event = NULL;
    /* A number past 64 bits or a double is JSON, a value out of range (codec_json.h). */
    if (!root)
        return json_error_code(jerr) == json_error_numeric_overflow ? GW_E_FIELD : GW_E_JSON;
    if (!json_is_array(root) || json_array_size(root) == 0 ||
        !json_is_string(name = json_array_get(root, 0)))
        return GW_E_PARAM;
    for (size_t i = 0; i < GW_ARRAY_SIZE(events); i++) {
        if (json_str_eq(name, events[i], strlen(events[i])))
            *event = events[i];
    }
    if (!*event)
        return GW_E_UNKNOWN_COMMAND;
    arg = json_array_get(root, 1);
    if (arg && !json_is_object(arg))
        return GW_E_NOT_OBJECT;
    return GW_OK;
}

/* The session's reading of the line made: its op, tag and fields. */
static void check_session(const char *line, size_t len, const char *event, json_t *fields,
                          const char *tag, size_t tag_len)
{
    /* An exact-size copy, so that a read past len is caught by ASan. */
    char *copy = gw_xmalloc(len + 1);
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    static const size_t max_lines[] = {256, MAX_LINE}; /* a small one too, for inputs < 4 KiB */

    memcpy(copy, line, len);
    copy[len] = '\n';
    for (size_t i = 0; i < GW_ARRAY_SIZE(max_lines); i++) {
        size_t line_len = SIZE_MAX, consumed = SIZE_MAX;
        enum proto_frame f = proto_frame(copy, len + 1, max_lines[i], &line_len, &consumed);
        if (len <= max_lines[i])
            FUZZ_CHECK(f == PROTO_LINE && line_len == len && consumed == len + 1,
                       "a line within max_line frames whole");
        else
            FUZZ_CHECK(f == PROTO_TOO_LONG, "a line over max_line is TOO_LONG");
    }
    free(copy);

    copy = gw_xmalloc(len ? len : 1);
    memcpy(copy, line, len);
    memset(why, 0x7f, sizeof(why));
    enum gw_err err = proto_parse(copy, len, &cmd, why);
    check_why(err, why);
    FUZZ_CHECK(err != GW_E_UTF8 && err != GW_E_JSON && err != GW_E_NOT_OBJECT,
               "the session reads the line as a JSON object");
    FUZZ_CHECK(!cmd.text_form, "the line is the JSON form");
    FUZZ_CHECK((unsigned)cmd.op < PROTO__COUNT && cmd.op != PROTO_NONE &&
                   strcmp(proto_op_name(cmd.op), event) == 0,
               "the session's op is the event");
    if (tag)
        FUZZ_CHECK(mem_eq(cmd.tag, cmd.tag_len, tag, tag_len), "the session's tag is the ack id");
    else
        FUZZ_CHECK(cmd.tag == NULL && !cmd.tag_given, "no ack id: no tag, the client's dropped");
    if (err == GW_OK) {
        json_t *ch = json_object_get(fields, "channel"), *body = json_object_get(fields, "body");
        FUZZ_CHECK(ch ? json_str_eq(ch, cmd.channel, cmd.channel_len) : cmd.channel == NULL,
                   "the session's channel is the argument's");
        FUZZ_CHECK(body ? json_str_eq(body, cmd.body, cmd.body_len) : cmd.body == NULL,
                   "the session's body is the argument's");
        FUZZ_CHECK(cmd.has_since == (json_object_get(fields, "since") != NULL) &&
                       (!cmd.has_since || (uint64_t)json_integer_value(
                                              json_object_get(fields, "since")) == cmd.since),
                   "the session's since is the argument's");
    } else {
        check_refusal(err, why, cmd.tag, cmd.tag_len);
    }
    proto_cmd_release(&cmd);
    free(copy);
}

static void check_event(const char *data, size_t len, const char *tag, size_t tag_len)
{
    static const char prefix[] = "\x01"
                                 "earlier";
    const size_t plen = sizeof(prefix) - 1;
    struct buf out = BUF_INIT;
    char why[GW_ERRLEN];
    const char *event;
    json_error_t jerr;
    json_t *root =
        json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    enum gw_err want = expected(root, &jerr, &event);

    buf_append(&out, prefix, plen);
    memset(why, 0x7f, sizeof(why));
    enum gw_err err = codec_sio_event_line(data, len, tag, tag_len, &out, why);
    check_why(err, why);
    FUZZ_CHECK(err == want, "the error jansson alone predicts (codec_json.h)");
    FUZZ_CHECK(out.len >= plen && memcmp(out.data, prefix, plen) == 0,
               "what out held is left as it was");
    if (err != GW_OK) {
        FUZZ_CHECK(out.len == plen, "out is untouched on an error");
        check_refusal(err, why, tag, tag_len);
        buf_release(&out);
        json_decref(root);
        return;
    }
    const char *line = out.data + plen;
    size_t n = out.len - plen;
    FUZZ_CHECK(n > 0, "a line is appended");
    FUZZ_CHECK(!memchr(line, '\n', n) && !memchr(line, '\r', n), "one line, without a line end");
    FUZZ_CHECK(text_utf8_valid(line, n), "the line is valid UTF-8");

    json_t *v = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(json_is_object(v), "the line is a JSON object");
    FUZZ_CHECK(json_str_eq(json_object_get(v, "op"), event, strlen(event)), "\"op\" is the event");
    if (tag)
        FUZZ_CHECK(json_str_eq(json_object_get(v, "tag"), tag, tag_len), "\"tag\" is the ack id");
    else
        FUZZ_CHECK(json_object_get(v, "tag") == NULL,
                   "no ack id: no \"tag\", the client's dropped");

    /* The other fields are the argument's, value for value. */
    json_t *arg = json_array_get(root, 1);
    json_t *want_fields = arg ? json_deep_copy(arg) : json_object();
    json_t *got_fields = json_deep_copy(v);
    json_object_del(want_fields, "op");
    json_object_del(want_fields, "tag");
    json_object_del(got_fields, "op");
    json_object_del(got_fields, "tag");
    FUZZ_CHECK(json_equal(want_fields, got_fields), "the line's fields are the argument's");

    check_session(line, n, event, want_fields, tag, tag_len);
    json_decref(got_fields);
    json_decref(want_fields);
    json_decref(v);
    json_decref(root);
    buf_release(&out);
}

/* ---- the Socket.IO packet ---- */

/* The header written back canonically, then read again: the same packet. */
static void check_rewrite(const struct sio_packet *pk, int nsp_given)
{
    struct buf b = BUF_INIT;
    struct sio_packet again;
    char why[GW_ERRLEN];

    buf_appendf(&b, "%d", (int)pk->type);
    if (pk->type == SIO_BINARY_EVENT || pk->type == SIO_BINARY_ACK)
        buf_appendf(&b, "%u-", pk->attachments);
    if (nsp_given) {
        buf_append(&b, pk->nsp, pk->nsp_len);
        buf_append(&b, ",", 1);
    }
    if (pk->has_id)
        buf_appendf(&b, "%llu", (unsigned long long)pk->id);
    buf_append(&b, pk->data, pk->data_len);
    enum gw_err err = sio_packet_parse(b.data, b.len, &again, why);
    FUZZ_CHECK(err == GW_OK, "the header written back parses");
    FUZZ_CHECK(again.type == pk->type && again.attachments == pk->attachments &&
                   mem_eq(again.nsp, again.nsp_len, pk->nsp, pk->nsp_len) &&
                   again.has_id == pk->has_id && (!pk->has_id || again.id == pk->id) &&
                   mem_eq(again.data, again.data_len, pk->data, pk->data_len),
               "header -> written back -> parse is the same packet");
    buf_release(&b);
}

static void check_connect_error(const struct sio_packet *pk)
{
    /* As the gateway refuses another namespace: its bytes quoted in the message. */
    char why[GW_ERRLEN];
    struct buf b = BUF_INIT;

    snprintf(why, sizeof(why), "namespace '%.*s' does not exist", (int)pk->nsp_len, pk->nsp);
    codec_sio_error_data(&b, why);
    json_t *v = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_string(json_object_get(v, "message")),
               "a message quoting the namespace is valid JSON");
    json_decref(v);
    buf_release(&b);
}

/* An Engine.IO message without its '4' (p, len: an exact-size copy). */
static void check_sio(const char *p, size_t len)
{
    struct sio_packet pk;
    char why[GW_ERRLEN], tag[24];
    size_t tag_len = 0;

    memset(&pk, 0x5a, sizeof(pk));
    memset(why, 0x7f, sizeof(why));
    enum gw_err err = sio_packet_parse(p, len, &pk, why);
    FUZZ_CHECK(err == GW_OK || err == GW_E_PARAM, "GW_OK or GW_E_PARAM");
    check_why(err, why);
    if (pk.has_id) {
        int n = snprintf(tag, sizeof(tag), "%llu", (unsigned long long)pk.id);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(tag), "the ack id fits its tag");
        tag_len = (size_t)n;
    }
    const char *t = pk.has_id ? tag : NULL;
    if (err != GW_OK) {
        check_refusal(err, why, t, tag_len);
        return;
    }
    FUZZ_CHECK(len > 0 && p[0] >= '0' && p[0] <= '6' && (int)pk.type == p[0] - '0',
               "the type is the first byte, 0..6");
    FUZZ_CHECK(pk.type == SIO_BINARY_EVENT || pk.type == SIO_BINARY_ACK || pk.attachments == 0,
               "attachments only in binary packets");
    FUZZ_CHECK(inside(pk.data, pk.data_len, p + 1, len - 1) && pk.data + pk.data_len == p + len,
               "the data runs to the packet's end, after the type");
    FUZZ_CHECK(pk.data_len == 0 || !is_digit(pk.data[0]), "the ack id takes every digit");
    FUZZ_CHECK(pk.nsp != NULL && pk.nsp_len >= 1 && pk.nsp_len <= SIO_NSP_MAX && pk.nsp[0] == '/',
               "the namespace: '/' and at most SIO_NSP_MAX bytes");
    int nsp_given = inside(pk.nsp, pk.nsp_len, p, len);
    if (nsp_given) {
        FUZZ_CHECK(pk.nsp > p && pk.nsp + pk.nsp_len <= pk.data, "the namespace is in the header");
        for (size_t i = 0; i < pk.nsp_len; i++) {
            unsigned char c = (unsigned char)pk.nsp[i];
            FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != ',', "a namespace of printable bytes");
        }
    } else {
        FUZZ_CHECK(pk.nsp_len == 1, "no namespace given: the main one");
        FUZZ_CHECK(pk.has_id || pk.data_len == 0 || pk.data[0] != '/',
                   "a '/' before any ack id is a namespace");
    }
    FUZZ_CHECK(sio_nsp_is_main(pk.nsp, pk.nsp_len) == (pk.nsp_len == 1),
               "sio_nsp_is_main is \"/\" exactly");
    check_rewrite(&pk, nsp_given);

    if (pk.type == SIO_CONNECT && !sio_nsp_is_main(pk.nsp, pk.nsp_len))
        check_connect_error(&pk);
    /* The gateway takes EVENTs to '/' only; the codec is given any. */
    if (pk.type == SIO_EVENT)
        check_event(pk.data, pk.data_len, t, tag_len);
}

/* One Engine.IO packet, as the gateway stores it: its own copy of exactly len bytes. */
static void check_packet(const char *p, size_t len)
{
    if (len == 0 || p[0] != EIO_MESSAGE)
        return; /* the other packet types are the front's, not a parser's */
    char *copy = gw_xmalloc(len - 1 ? len - 1 : 1);
    memcpy(copy, p + 1, len - 1);
    check_sio(copy, len - 1);
    free(copy);
}

/* ---- the Engine.IO payload ---- */

static void check_payload(const char *p, size_t len)
{
    struct buf joined = BUF_INIT;
    size_t off = 0, npkt = 0, nsep = 0;
    const char *pkt;
    size_t pkt_len;

    for (size_t i = 0; i < len; i++)
        nsep += p[i] == EIO_SEP;
    for (;;) {
        size_t prev = off;
        pkt = NULL;
        pkt_len = SIZE_MAX;
        if (!eio_payload_next(p, len, &off, &pkt, &pkt_len))
            break;
        FUZZ_CHECK(npkt <= nsep, "no more packets than separators, plus one");
        FUZZ_CHECK(off > prev, "each call advances");
        FUZZ_CHECK(pkt == p + prev, "a packet starts where the last one ended");
        FUZZ_CHECK(inside(pkt, pkt_len, p, len), "a packet lies inside the payload");
        FUZZ_CHECK(!memchr(pkt, EIO_SEP, pkt_len), "a packet holds no separator");
        FUZZ_CHECK(off == prev + pkt_len + 1, "past the packet and its separator");
        FUZZ_CHECK(off > len || p[off - 1] == EIO_SEP,
                   "a packet before the end ends at a separator");
        if (npkt)
            buf_append(&joined, "\x1e", 1);
        buf_append(&joined, pkt, pkt_len);
        npkt++;
        check_packet(pkt, pkt_len);
    }
    FUZZ_CHECK(!eio_payload_next(p, len, &off, &pkt, &pkt_len), "no packet after the last");
    FUZZ_CHECK(npkt == (len ? nsep + 1 : 0), "one packet more than separators (none when empty)");
    FUZZ_CHECK(mem_eq(joined.data ? joined.data : "", joined.len, p, len),
               "the packets joined by separators are the payload");
    buf_release(&joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that a read past size is caught by ASan. */
    char *in = gw_xmalloc(size ? size : 1);

    if (size)
        memcpy(in, data, size);
    check_payload(in, size);
    /* A WebSocket message is one packet, separators and all. */
    if (memchr(in, EIO_SEP, size))
        check_packet(in, size);
    free(in);
    return 0;
}
