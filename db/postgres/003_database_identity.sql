-- 003 (PostgreSQL): the database's identity, drawn once, when the schema is
-- made. Every gateway reads it at start and compares it at every
-- reconnection: a database dropped and made again under running gateways
-- (then set up by another gateway), or another one answering at the same
-- address, starts its seqs again at 1, and taking it for the old one would
-- push its messages as if they followed what the subscribers hold. A dump
-- restored keeps it: the identity follows the data, not the server.
CREATE TABLE visavis_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),  -- at most one row
    id  text    NOT NULL
);
INSERT INTO visavis_identity (id)
    VALUES (md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text));
