#!/usr/bin/env bash
# Cluster benchmark: what several gateways on one PostgreSQL database give,
# beside one gateway on SQLite (docs/scaling.md).
#
#   bash bench/cluster.sh          (from the repo root; see bench/README.md)
#
# Three set-ups, one after the other, on this machine:
#   sqlite    one gateway, a SQLite file (--sync full)
#   pg-1      one gateway on a PostgreSQL server started here
#   pg-2      two gateways on one database of that server
# and in each, driven by sockbench over TCP sessions (spread over the
# gateways in turn, --ports):
#   1 durable PUB, CONNECTIONS sessions, one in flight each, one channel: msgs/s
#     and publish -> ack latency
#   2 the same, PIPELINE in flight on each: msgs/s (what the commits can take)
#   3 fan-out: FANOUT_SUBS subscribers of one channel spread over the gateways,
#     one publisher on the first at FANOUT_RATE msgs/s for FANOUT_SECONDS:
#     publish -> delivery to the last of the subscribers, per message (with two
#     gateways half of them get it through the database's notice)
# Then it checks that every acknowledged PUB is in the store, and prints one
# table. The PostgreSQL server is Debian's (initdb into the temporary folder,
# as the postgres user when run as root, fsync and synchronous_commit on as
# the server's defaults have them, loopback only); the set-ups share it,
# each with a database of its own.
#
# Environment (all optional):
#   DURATION=5          seconds per PUB run
#   CONNECTIONS=50      sessions for the PUB runs (in all, over the gateways)
#   PIPELINE=16         PUBs in flight per session in the pipelined run
#   SIZE=100            message body bytes (at least 40)
#   FANOUT_SUBS=100     subscriber sessions   FANOUT_RATE=1000  publishes per second
#   FANOUT_SECONDS=3    publishing time of the fan-out run
#   GATEWAY_BIN=path    measure this gateway binary instead of building build-release
#   KEEP_TMP=1          keep the temporary folder (logs, raw outputs) and print its path
#   BENCH_TMPDIR=/var/tmp   where the temporary folder is made (keep it on a real
#                       disk: on tmpfs an fsync costs nothing and the PUB runs lie)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=cluster.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source bench/lib.sh

: "${DURATION:=5}" "${CONNECTIONS:=50}" "${PIPELINE:=16}" "${SIZE:=100}" "${FANOUT_SUBS:=100}" \
    "${FANOUT_RATE:=1000}" "${FANOUT_SECONDS:=3}"
GATEWAY_BIN=${GATEWAY_BIN:-}
GW=${GATEWAY_BIN:-build-release/gateway/visavis-gateway}
SB=build-release/clients/sockbench/sockbench
require_positive_ints DURATION CONNECTIONS PIPELINE SIZE FANOUT_SUBS FANOUT_RATE FANOUT_SECONDS
((SIZE >= 40)) || { echo "cluster.sh: SIZE must be at least 40 (the fan-out body holds a timestamp)" >&2; exit 2; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. packages and build ----------------------------------------------------
ensure_packages postgresql gcc libc6-dev meson ninja-build pkg-config libmicrohttpd-dev \
    libjansson-dev libsqlite3-dev libpq-dev libwslay-dev nettle-dev curl python3
if [[ -z $GATEWAY_BIN ]]; then
    build_release gateway/visavis-gateway clients/sockbench/sockbench
else
    build_release clients/sockbench/sockbench
fi
[[ -x $GW && -x $SB ]] || die "$GW or $SB was not built"
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[[ -x $PG_BIN/postgres ]] || die "no PostgreSQL server under /usr/lib/postgresql/*/bin"

make_tmp visavis-cluster
say "temporary folder $TMP ($(tmp_fstype))"

# --- 2. the PostgreSQL server ---------------------------------------------------
# As root, the server runs as postgres (it refuses root); setpriv execs, so
# the PID is the server's own.
AS_PG=()
if [[ $(id -u) -eq 0 ]]; then
    AS_PG=(setpriv --reuid postgres --regid postgres --init-groups)
    chmod 0711 "$TMP" # the server's folder inside it is its own; the rest stays private
    mkdir -p "$TMP/pg" && chown postgres: "$TMP/pg"
else
    mkdir -p "$TMP/pg"
fi
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust -E UTF8 --no-locale \
    >"$TMP/pg/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$TMP/pg/initdb.log")"
PG_PORT=$(free_port)
"${AS_PG[@]}" "$PG_BIN/postgres" -D "$TMP/pg/data" -p "$PG_PORT" -k "$TMP/pg" \
    -c listen_addresses=127.0.0.1 -c max_connections=100 >"$TMP/pg/server.log" 2>&1 &
PG_PID=$!
PIDS+=("$PG_PID")
wait_ready "$PG_PID" "PostgreSQL" "$TMP/pg/server.log" "exited before it was ready" \
    "is not ready" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
psql_do() { "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
say "PostgreSQL $(psql_do 'SHOW server_version') on 127.0.0.1:$PG_PORT (synchronous_commit $(psql_do 'SHOW synchronous_commit'), fsync $(psql_do 'SHOW fsync'))"

# --- 3. runs ---------------------------------------------------------------------
# shellcheck disable=SC2034  # LABEL: sb (lib.sh) fills it
declare -A F LABEL
SB_TIMEOUT=$((DURATION + FANOUT_SECONDS + 120))
BODY=(--size "$SIZE")
SETUPS=(sqlite pg-1 pg-2)
declare -A NAME=([sqlite]="SQLite, 1 gateway" [pg-1]="PostgreSQL, 1 gateway" [pg-2]="PostgreSQL, 2 gateways")

for setup in "${SETUPS[@]}"; do
    case $setup in
    sqlite) db=$TMP/bench.db n=1 ;;
    pg-*)
        psql_do "CREATE DATABASE \"$setup\"" || die "CREATE DATABASE $setup failed"
        db="postgresql://postgres@127.0.0.1:$PG_PORT/$setup" n=${setup#pg-}
        ;;
    esac
    ports=() pids=() https=()
    for ((i = 1; i <= n; i++)); do
        GW_NAME=gw-$setup-$i
        start_gateway --need-tcp --http-addr 127.0.0.1:0 --tcp-addr 127.0.0.1:0 --db "$db" \
            --log-level warn
        ports+=("$GW_TCP") pids+=("$GW_PID") https+=("$GW_PORT")
    done
    G=(--host 127.0.0.1 --port "${ports[0]}" --ports "$(IFS=,; echo "${ports[*]}")")
    sb "$setup.pub" "PUB, $CONNECTIONS sessions" pub "${G[@]}" --connections "$CONNECTIONS" \
        --duration "$DURATION" "${BODY[@]}" --channel c1
    sb "$setup.pipe" "PUB pipelined $PIPELINE deep" pub "${G[@]}" --connections "$CONNECTIONS" \
        --pipeline "$PIPELINE" --duration "$DURATION" "${BODY[@]}" --channel p"$PIPELINE"
    sb "$setup.fan" "fan-out to $FANOUT_SUBS" fanout "${G[@]}" --subscribers "$FANOUT_SUBS" \
        --rate "$FANOUT_RATE" --duration "$FANOUT_SECONDS" "${BODY[@]}" --channel fan
    # Every acknowledged PUB is in the store, as the last gateway reads it; nothing more.
    r=$(curl -fsS -m 5 "http://127.0.0.1:${https[-1]}/v1/channels") || die "GET /v1/channels failed"
    check_json "$setup: the store holds exactly the acknowledged PUBs" "$r" \
        "{c['name']: c['messages'] for c in channels} == {'c1': ${F[$setup.pub.ops]}, 'p$PIPELINE': ${F[$setup.pipe.ops]}, 'fan': ${F[$setup.fan.messages]}}"
    for pid in "${pids[@]}"; do
        kill -TERM "$pid"
        wait "$pid" || die "a gateway of $setup did not stop cleanly"
    done
done

# --- 4. table -------------------------------------------------------------------
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
echo
printf '  %-24s %12s %8s %8s %14s %12s %8s %8s\n' "" "PUB msgs/s" "p50 ms" "p99 ms" \
    "PUB -P$PIPELINE msgs/s" "fan-out" "p50 ms" "p99 ms"
for setup in "${SETUPS[@]}"; do
    printf '  %-24s %12.0f %8s %8s %14.0f %12s %8s %8s\n' "${NAME[$setup]}" \
        "${F[$setup.pub.msgs_per_s]}" "$(ms "${F[$setup.pub.p50_us]}")" "$(ms "${F[$setup.pub.p99_us]}")" \
        "${F[$setup.pipe.msgs_per_s]}" "$FANOUT_SUBS subs" "$(ms "${F[$setup.fan.p50_us]}")" \
        "$(ms "${F[$setup.fan.p99_us]}")"
done
echo
echo "  PUB: $CONNECTIONS sessions, one channel, ${SIZE}-byte bodies, ${DURATION} s; p50/p99 publish -> ack."
echo "  fan-out: one publisher at $FANOUT_RATE msgs/s for ${FANOUT_SECONDS} s on the first gateway, $FANOUT_SUBS"
echo "  subscribers spread over the gateways; p50/p99 publish -> delivery to the last of them."
echo "  $(nproc) CPUs; load average before: $LOAD_START, after: $(cut -d' ' -f1-3 /proc/loadavg);"
echo "  temporary folder on $(tmp_fstype). Everything ran on this one machine: two gateways"
echo "  share its CPUs with the database and the load, so they show the cost of the"
echo "  cluster's path here, not the capacity of two machines."
exit 0
