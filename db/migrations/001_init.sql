-- 001: channels and their messages.
-- A channel row carries its counters so that the next seq and the channel
-- list never need a scan of messages.
CREATE TABLE channels (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE,
    last_seq  INTEGER NOT NULL DEFAULT 0,  -- seq of the newest message
    msg_count INTEGER NOT NULL DEFAULT 0,  -- messages the channel holds
    last_ts   INTEGER NOT NULL DEFAULT 0   -- ms since the epoch, UTC
);

-- AUTOINCREMENT: an id is never handed out twice, even after deletions.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    seq        INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    ts         INTEGER NOT NULL,           -- ms since the epoch, UTC
    via        TEXT    NOT NULL,           -- rest, tcp, ...
    UNIQUE (channel_id, seq)               -- also the index for "since N" reads
);
