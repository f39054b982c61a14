-- 002 (PostgreSQL): the channel list is read a page at a time in byte order,
-- as SQLite sorts (WHERE name COLLATE "C" > $after ORDER BY name COLLATE "C"
-- LIMIT n). The UNIQUE index on name is in the database's collation and
-- cannot serve that order: without this one, every page would read and sort
-- every channel.
CREATE INDEX channels_name_bytes ON channels (name COLLATE "C");
