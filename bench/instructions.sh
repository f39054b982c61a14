#!/usr/bin/env bash
# The gateway's own work per request, in instructions counted by callgrind:
# one REST publish, one REST page read of 10 messages, one TCP PUB.
#
#   bash bench/instructions.sh              (from the repo root)
#   GATEWAY_BIN=<other build> bash bench/instructions.sh
#
# A count of instructions is the same on a busy machine as on a quiet one,
# and needs no hardware counters (this container has none); it leaves out the
# kernel (system calls, the loopback) and the waits, which the timed
# benchmarks (rest.sh, socket.sh, fanout.sh) include. Compare two builds with
# it, not two servers.
#
# Each kind runs on a fresh gateway under valgrind --tool=callgrind, one
# connection with one request at a time (bench/seq_client.py), so every
# publish is a commit of its own; --sync normal on a temporary folder.
# It runs COUNT requests, then 4 x COUNT on another gateway: the difference
# over 3 x COUNT is the figure, with the start-up and the shutdown taken out.
#
# Environment: COUNT=1000, GATEWAY_BIN=path (else build-release is built),
# BENCH_TMPDIR (where the temporary folder goes), KEEP_TMP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=instructions.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source bench/lib.sh

: "${COUNT:=1000}"
require_positive_ints COUNT
ensure_packages valgrind
if [[ -n ${GATEWAY_BIN:-} ]]; then
    BIN=$(realpath "$GATEWAY_BIN")
else
    build_release gateway/visavis-gateway
    BIN=$ROOT/build-release/gateway/visavis-gateway
fi
make_tmp visavis-instr
# start_gateway runs one command: this one runs the gateway under callgrind.
GW=$TMP/callgrind-gateway
cat >"$GW" <<WRAP
#!/bin/sh
exec valgrind --quiet --tool=callgrind --callgrind-out-file="$TMP/cg.\$GW_RUN" "$BIN" "\$@"
WRAP
chmod +x "$GW"

# count KIND N: instructions of a gateway that served N requests of KIND
count() {
    local kind=$1 n=$2 port
    export GW_RUN=$kind.$n
    READY_DEADLINE=60 GW_NAME=$GW_RUN start_gateway --need-tcp --http-addr 127.0.0.1:0 \
        --tcp-addr 127.0.0.1:0 --db "$TMP/$GW_RUN.db" --sync normal --log-level warn >&2
    port=$GW_PORT
    [[ $kind == pub ]] && port=$GW_TCP
    [[ $kind == get ]] && python3 bench/seq_client.py post "$GW_PORT" 200
    python3 bench/seq_client.py "$kind" "$port" "$n"
    stop_server "$GW_PID" >&2
    sed -n 's/^totals: //p' "$TMP/cg.$GW_RUN"
}

say "gateway: $BIN; $COUNT and $((4 * COUNT)) requests of each kind"
printf '%-44s %14s\n' "request" "instructions"
for kind in post get pub; do
    case $kind in
    post) label='REST publish (POST, 100-byte body)' ;;
    get) label='REST read (GET, a page of 10)' ;;
    pub) label='TCP PUB (100-byte body)' ;;
    esac
    small=$(count "$kind" "$COUNT")
    large=$(count "$kind" $((4 * COUNT)))
    printf '%-44s %14s\n' "$label" $(((large - small) / (3 * COUNT)))
done
