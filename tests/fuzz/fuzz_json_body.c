/*
 * fuzz_json_body.c - libFuzzer target for the JSON decoders of
 * common/codec_json.h: codec_publish_decode (a REST publish body) and
 * codec_cmd_decode (a session command in JSON), on the same bytes.
 *
 * Input: the body, as it would arrive over HTTP or as a session line.
 *
 * Invariants:
 *   - codes in range, why set on errors, *out left empty on errors;
 *   - an accepted body is what jansson alone reads (the plain bodies skip it);
 *   - decoded strings are valid UTF-8, command strings within their limits;
 *   - round trip: decode -> codec_msg_encode -> decode gives the same body
 *     and sender; decode -> the JSON form (jansson) -> codec_cmd_decode gives
 *     the same command;
 *   - the error body and error line built from any result are valid JSON.
 */
#include "buf.h"
#include "codec_json.h"
#include "gw.h"
#include "model.h"
#include "proto_line.h"
#include "text.h"

#include "fuzz_util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int mem_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_why(enum gw_err err, const char *why)
{
    FUZZ_CHECK((unsigned)err < GW_E__COUNT, "error code in range");
    if (err == GW_OK)
        return;
    FUZZ_CHECK(memchr(why, '\0', GW_ERRLEN) != NULL && why[0] != '\0', "why set");

    /* The REST error body quoting why is valid JSON. */
    size_t len;
    char *s = codec_error_encode(err, why, &len);
    json_t *v = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(v), "the error body is a JSON object");
    json_decref(v);
    free(s);
}

static void fuzz_publish(const char *in, size_t len)
{
    struct codec_publish p, again;
    char why[GW_ERRLEN];

    memset(why, 0x7f, sizeof(why));
    enum gw_err err = codec_publish_decode(in, len, &p, why);
    check_why(err, why);
    if (err != GW_OK) {
        FUZZ_CHECK(p.body == NULL && p.sender == NULL && p.body_len == 0 && p.sender_len == 0,
                   "*out is left empty on errors");
        codec_publish_release(&p);
        return;
    }
    FUZZ_CHECK(p.body != NULL, "a decoded publish has a body");

    /* What the decoder read without jansson, jansson reads the same. */
    json_t *ref =
        json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    json_t *rb = json_object_get(ref, "body"), *rs = json_object_get(ref, "sender");
    FUZZ_CHECK(json_is_string(rb) &&
                   mem_eq(json_string_value(rb), json_string_length(rb), p.body, p.body_len),
               "jansson reads the same body");
    FUZZ_CHECK(rs ? json_is_string(rs) && mem_eq(json_string_value(rs), json_string_length(rs),
                                                 p.sender, p.sender_len)
                  : p.sender == NULL,
               "jansson reads the same sender");
    json_decref(ref);
    FUZZ_CHECK(p.body[p.body_len] == '\0', "the body is NUL-terminated");
    FUZZ_CHECK(text_utf8_valid(p.body, p.body_len), "the body is valid UTF-8");
    if (p.sender) {
        FUZZ_CHECK(p.sender[p.sender_len] == '\0', "the sender is NUL-terminated");
        FUZZ_CHECK(text_utf8_valid(p.sender, p.sender_len), "the sender is valid UTF-8");
    }

    /* decode -> encode (as a stored message) -> decode: the same bytes. */
    struct gw_msg m;
    memset(&m, 0, sizeof(m));
    m.id = 1;
    m.seq = 1;
    m.via = GW_T_REST;
    memcpy(m.channel, "fz", 3);
    m.sender = p.sender ? p.sender : (char *)GW_SENDER_DEFAULT;
    m.sender_len = p.sender ? p.sender_len : strlen(GW_SENDER_DEFAULT);
    m.body = p.body;
    m.body_len = p.body_len;
    size_t elen;
    char *enc = codec_msg_encode(&m, &elen);
    FUZZ_CHECK(enc != NULL && strlen(enc) == elen, "the encoding is a C string of *len bytes");
    err = codec_publish_decode(enc, elen, &again, why);
    FUZZ_CHECK(err == GW_OK, "an encoded message decodes as a publish");
    FUZZ_CHECK(mem_eq(again.body, again.body_len, p.body, p.body_len), "body survives");
    FUZZ_CHECK(mem_eq(again.sender, again.sender_len, m.sender, m.sender_len), "sender survives");
    codec_publish_release(&again);

    /* The push line of the same message gives the same body back. */
    struct buf b = BUF_INIT;
    codec_line_message(&b, &m);
    FUZZ_CHECK(b.len > 0 && b.data[b.len - 1] == '\n' && !memchr(b.data, '\n', b.len - 1),
               "the push is one line");
    json_t *v = json_loadb(b.data, b.len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    json_t *body = json_object_get(v, "body");
    FUZZ_CHECK(json_is_string(body) &&
                   mem_eq(json_string_value(body), json_string_length(body), p.body, p.body_len),
               "the push line's body survives");
    json_decref(v);
    buf_release(&b);
    free(enc);
    codec_publish_release(&p);
    FUZZ_CHECK(p.body == NULL && p.sender == NULL, "release empties");
    codec_publish_release(&p);
}

static int cmd_eq(const struct proto_cmd *a, const struct proto_cmd *b)
{
    return a->op == b->op && mem_eq(a->channel, a->channel_len, b->channel, b->channel_len) &&
           mem_eq(a->body, a->body_len, b->body, b->body_len) &&
           mem_eq(a->sender, a->sender_len, b->sender, b->sender_len) &&
           mem_eq(a->token, a->token_len, b->token, b->token_len) &&
           mem_eq(a->tag, a->tag_len, b->tag, b->tag_len) && a->has_since == b->has_since &&
           (!a->has_since || a->since == b->since) && a->has_limit == b->has_limit &&
           (!a->has_limit || a->limit == b->limit);
}

static void set_str(json_t *o, const char *key, const char *p, size_t n)
{
    if (!p)
        return;
    FUZZ_CHECK(text_utf8_valid(p, n), "decoded strings are valid UTF-8");
    json_object_set_new(o, key, json_stringn(p, n));
}

static void fuzz_cmd(const char *in, size_t len)
{
    struct proto_cmd cmd, again;
    char why[GW_ERRLEN];

    memset(&cmd, 0, sizeof(cmd)); /* as proto_parse does before calling it */
    memset(why, 0x7f, sizeof(why));
    enum gw_err err = codec_cmd_decode(in, len, &cmd, why);
    check_why(err, why);
    FUZZ_CHECK((unsigned)cmd.op < PROTO__COUNT, "op in range");
    FUZZ_CHECK(!cmd.tag || cmd.tag_len <= PROTO_TAG_MAX, "tag within its limit");

    /* The error line for it is one line of JSON, tag echoed. */
    struct buf b = BUF_INIT;
    if (err != GW_OK) {
        codec_line_error(&b, err, why, proto_op_name(cmd.op), cmd.tag, cmd.tag_len);
        FUZZ_CHECK(b.data[b.len - 1] == '\n' && !memchr(b.data, '\n', b.len - 1),
                   "the error line is one line");
        json_t *v = json_loadb(b.data, b.len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
        FUZZ_CHECK(json_is_object(v), "the error line is a JSON object");
        if (cmd.tag) {
            json_t *t = json_object_get(v, "tag");
            FUZZ_CHECK(json_is_string(t) && mem_eq(json_string_value(t), json_string_length(t),
                                                   cmd.tag, cmd.tag_len),
                       "the error line echoes the tag");
        }
        json_decref(v);
        buf_release(&b);
        proto_cmd_release(&cmd);
        return;
    }
    FUZZ_CHECK(cmd.op != PROTO_NONE, "a decoded command has an op");
    FUZZ_CHECK(!cmd.token || cmd.token_len <= PROTO_TOKEN_MAX, "token within its limit");
    FUZZ_CHECK(!cmd.has_since || cmd.since <= INT64_MAX, "since <= INT64_MAX");
    FUZZ_CHECK(!cmd.has_limit || cmd.limit <= INT64_MAX, "limit <= INT64_MAX");
    if (cmd.op == PROTO_PUB)
        FUZZ_CHECK(cmd.body != NULL, "pub has a body");
    if (cmd.op == PROTO_PUB || cmd.op == PROTO_SUB || cmd.op == PROTO_UNSUB || cmd.op == PROTO_HIST)
        FUZZ_CHECK(cmd.channel != NULL, "a channel where one is required");

    /* What jansson alone reads from the input agrees: op by its full length, since, limit. */
    json_t *root = json_loadb(in, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    json_t *op = json_object_get(root, "op");
    const char *name = proto_op_name(cmd.op);
    FUZZ_CHECK(json_is_string(op) &&
                   mem_eq(json_string_value(op), json_string_length(op), name, strlen(name)),
               "the op is the input's op string, every byte of it");
    if (cmd.has_since)
        FUZZ_CHECK((uint64_t)json_integer_value(json_object_get(root, "since")) == cmd.since,
                   "since is the input's");
    if (cmd.has_limit)
        FUZZ_CHECK((uint64_t)json_integer_value(json_object_get(root, "limit")) == cmd.limit,
                   "limit is the input's");
    json_decref(root);

    /* decode -> the JSON form -> decode: the same command. */
    json_t *o = json_object();
    json_object_set_new(o, "op", json_string(proto_op_name(cmd.op)));
    set_str(o, "channel", cmd.channel, cmd.channel_len);
    set_str(o, "body", cmd.body, cmd.body_len);
    set_str(o, "sender", cmd.sender, cmd.sender_len);
    set_str(o, "token", cmd.token, cmd.token_len);
    set_str(o, "tag", cmd.tag, cmd.tag_len);
    if (cmd.has_since)
        json_object_set_new(o, "since", json_integer((json_int_t)cmd.since));
    if (cmd.has_limit)
        json_object_set_new(o, "limit", json_integer((json_int_t)cmd.limit));
    char *s = json_dumps(o, JSON_COMPACT);
    FUZZ_CHECK(s != NULL, "json_dumps");
    memset(&again, 0, sizeof(again));
    err = codec_cmd_decode(s, strlen(s), &again, why);
    FUZZ_CHECK(err == GW_OK, "the re-encoded command decodes");
    FUZZ_CHECK(cmd_eq(&cmd, &again), "decode -> JSON form -> decode is the same command");
    proto_cmd_release(&again);
    free(s);
    json_decref(o);
    proto_cmd_release(&cmd);
    proto_cmd_release(&cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that a read past size is caught by ASan. */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    fuzz_publish(in, size);
    fuzz_cmd(in, size);
    free(in);
    return 0;
}
