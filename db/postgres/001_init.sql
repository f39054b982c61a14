-- 001 (PostgreSQL): channels and their messages, as db/migrations/001 for
-- SQLite. Several gateways share these tables: a channel's row is the lock
-- that orders its publishes (each transaction takes it before it allocates
-- seqs from last_seq), and it carries the counters so that neither the next
-- seq nor the channel list needs a scan of messages.
CREATE TABLE channels (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text   NOT NULL UNIQUE,
    last_seq  bigint NOT NULL DEFAULT 0,  -- seq of the newest message
    msg_count bigint NOT NULL DEFAULT 0,  -- messages the channel holds
    last_ts   bigint NOT NULL DEFAULT 0   -- ms since the epoch, UTC
);

-- id: from a sequence, so unique and never handed out twice (a rolled-back
-- transaction leaves a hole in ids, never in seqs). Within a channel ids
-- grow with seq, since each is drawn while the channel's row is held.
-- body is bytea: a message body may hold NUL bytes, which text cannot.
CREATE TABLE messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id bigint NOT NULL REFERENCES channels(id),
    seq        bigint NOT NULL,
    sender     text   NOT NULL,
    body       bytea  NOT NULL,
    ts         bigint NOT NULL,            -- ms since the epoch, UTC
    via        text   NOT NULL,            -- rest, tcp, ...
    UNIQUE (channel_id, seq)               -- also the index for "since N" reads
);
