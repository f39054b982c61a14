#!/bin/sh
# The cluster profile's PostgreSQL (cluster/Dockerfile, stage postgres).
#
# On the first start (an empty volume) it makes the database cluster, the
# role VISAVIS_PG_USER with the password VISAVIS_PG_PASSWORD and the
# database VISAVIS_PG_DB (visavis, visavis, visavis unless set), reachable by
# password from the compose network only (the service publishes no port).
# Then it runs the server in the foreground as PID 1, listening on every
# interface of its container. The gateways create their tables themselves.
set -eu

user=${VISAVIS_PG_USER:-visavis}
password=${VISAVIS_PG_PASSWORD:-visavis}
db=${VISAVIS_PG_DB:-visavis}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "visavis-postgres: a new database cluster in $PGDATA"
    initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
        --no-locale >/dev/null
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' \
        >>"$PGDATA/pg_hba.conf"
    # Alone, on the socket only, for the role and the database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres \
        -v user="$user" -v password="$password" -v db="$db" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "visavis-postgres: role $user and database $db made"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
