# shellcheck shell=bash
# Shared by bench/rest.sh and bench/socket.sh; sourced, never run. Provides:
#
#   SKIP_GATEWAY STRICT KEEP_TMP     the settings both scripts take from the
#                                    environment (default 0), and READY_DEADLINE
#   say MSG... / die MSG...          progress line / failure message and exit 1
#   require_positive_ints VAR...     exit 2 unless each named variable is 1, 2, ...
#   ensure_packages PKG...           apt-get install the missing ones (sudo when not root)
#   build_release [TARGET...]        meson setup build-release (once), then ninja
#   make_tmp PREFIX                  TMP=<BENCH_TMPDIR or /var/tmp>/PREFIX.XXXXXX,
#                                    with the cleanup traps installed
#   tmp_fstype                       the file system type of $TMP (ext4, tmpfs, ...)
#   alive PID                        running and not a zombie
#   free_port                        a free loopback port in 20000..32000
#                                    (webdis keeps ports in a signed short)
#   wait_ready PID NAME LOG EARLY LATE CMD...   poll CMD until it succeeds
#   spawn_redis NAME PORT ARGS...    start a redis-server in $TMP/NAME (REDIS_PID)
#   start_gateway [--need-tcp] ARGS...  start $GW with ARGS, wait for its READY line
#                                    (GW_PID GW_PORT GW_TCP; its files in
#                                    $TMP/$GW_NAME.*, GW_NAME=gateway unless set)
#   sb KEY LABEL MODE ARGS...        run $SB (sockbench) once, within SB_TIMEOUT s,
#                                    its RESULT fields into F[KEY.*], LABEL[KEY]
#                                    and KEY onto ORDER (the script declares them)
#   check_json WHAT JSON EXPR        die unless the python EXPR over d=JSON holds
#   print_gateway_log                the last lines of the gateway's stderr, if any
#   finish                           exit 1 when STRICT=1 and MISSED > 0, else exit 0
#
# The sourcing script sets BENCH_NAME (for messages) before it sources this
# file, and GW before start_gateway. Every process started goes into PIDS,
# which the cleanup stops on exit.

SKIP_GATEWAY=${SKIP_GATEWAY:-0}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}
READY_DEADLINE=15   # seconds for any server to become ready
PIDS=()
TAKEN=()

say() { printf '== %s\n' "$*"; }
die() {
    printf '\n%s: FAILED: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

require_positive_ints() { # var...
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$BENCH_NAME: $v must be a positive integer" >&2; exit 2; }
    done
}

ensure_packages() { # package...
    local p sudo=
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    say "installing: ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build_release() { # [ninja target...]
    say "building${*:+ $*} in build-release/ (release)"
    if [[ ! -f build-release/build.ninja ]]; then
        meson setup build-release --buildtype=release >/dev/null || die "meson setup failed"
    fi
    ninja -C build-release "$@" >/dev/null || die "ninja -C build-release${*:+ $*} failed"
}

# --- process bookkeeping and cleanup -----------------------------------------
make_tmp() { # prefix
    TMP=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

tmp_fstype() { df -PT "$TMP" | awk 'NR == 2 { print $2 }'; }

alive() { # pid: running and not a zombie
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $s && $s != Z* ]]
}

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local rc=$? pid i
    set +e
    trap - EXIT INT TERM
    exec 3<&-
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
        if alive "$pid"; then
            echo "$BENCH_NAME: pid $pid ignored SIGTERM for 5 s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    if [[ $KEEP_TMP == 1 ]]; then
        echo "$BENCH_NAME: kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}

# A free loopback port below 32768 (webdis 0.1.9 keeps ports in a signed short)
# and below the ephemeral range that socket.sh's 10,000 client sockets use.
free_port() {
    local p
    p=$(python3 - "${TAKEN[@]}" <<'EOF'
import random, socket, sys
taken = set(int(a) for a in sys.argv[1:])
for _ in range(500):
    p = random.randint(20000, 32000)
    if p in taken:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
EOF
    ) || die "no free port found"
    TAKEN+=("$p")
    echo "$p"
}

# Polls cmd until it succeeds; bounded by READY_DEADLINE, and gives up at once
# if the process that should answer has exited. The failures read
# "NAME EARLY; its log: ..." and "NAME LATE after READY_DEADLINE s".
wait_ready() { # pid name log early late cmd...
    local pid=$1 name=$2 log=$3 early=$4 late=$5 end=$((SECONDS + READY_DEADLINE))
    shift 5
    until "$@"; do
        alive "$pid" || die "$name $early; its log:
$(tail -n 20 "$log" 2>/dev/null)"
        ((SECONDS < end)) || die "$name $late after $READY_DEADLINE s"
        sleep 0.05
    done
}

# --- servers -------------------------------------------------------------------
# Starts redis-server on 127.0.0.1:port, its files in $TMP/name, without RDB
# snapshots; does not wait for it. Sets REDIS_PID.
spawn_redis() { # name port extra-args...
    local name=$1 port=$2
    shift 2
    mkdir -p "$TMP/$name"
    redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize no \
        --save '' --dir "$TMP/$name" --logfile "$TMP/$name/redis.log" "$@" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
}

# Starts $GW with the given arguments (ports 0), reads its ports from its
# "READY http=<port> tcp=<port>" line within READY_DEADLINE, keeps draining its
# stdout into $TMP/gateway.out (stderr: $TMP/gateway.log) and checks /healthz.
# Sets GW_PID, GW_PORT and GW_TCP (empty when the line has no tcp=).
# With --need-tcp, a READY line without tcp= is fatal.
start_gateway() { # [--need-tcp] gateway-args...
    local need_tcp=0 end left line= f=$TMP/${GW_NAME:-gateway}
    if [[ ${1:-} == --need-tcp ]]; then
        need_tcp=1
        shift
    fi
    # No UDP front (its default port is fixed): nothing here measures it, and
    # two benches, or a gateway already running, must not collide on it.
    if "$GW" --help 2>/dev/null | grep -q -- '--udp-addr'; then
        set -- --udp-addr= "$@"
    fi
    mkfifo "$f.fifo"
    "$GW" "$@" >"$f.fifo" 2>"$f.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    exec 3<"$f.fifo"
    end=$((SECONDS + READY_DEADLINE))
    while :; do
        left=$((end - SECONDS))
        ((left > 0)) || die "gateway printed no READY line within $READY_DEADLINE s"
        if IFS= read -r -t "$left" -u 3 line; then
            [[ $line == READY* ]] && break
            printf '%s\n' "$line" >>"$f.out"
        else
            die "gateway printed no READY line (exited or timed out); its stderr:
$(tail -n 20 "$f.log")"
        fi
    done
    GW_PORT=$(sed -n 's/.*http=\([0-9][0-9]*\).*/\1/p' <<<"$line")
    GW_TCP=$(sed -n 's/.*tcp=\([0-9][0-9]*\).*/\1/p' <<<"$line")
    [[ -n $GW_PORT ]] || die "cannot read the http port from '$line'"
    if ((need_tcp)) && [[ -z $GW_TCP ]]; then
        die "no tcp=<port> in the gateway's READY line '$line': no TCP session front"
    fi
    # Keep draining its stdout so it can never block on a full pipe.
    cat <&3 >>"$f.out" &
    PIDS+=($!)
    exec 3<&-
    say "gateway pid $GW_PID: $line"
    curl -fsS -m 5 "http://127.0.0.1:$GW_PORT/healthz" >/dev/null || die "gateway /healthz failed"
}

# --- sockbench -------------------------------------------------------------------
# Stores the key=value fields of a RESULT line under F[key.*].
take_result() { # key line
    local kv
    for kv in $2; do
        [[ $kv == *=* ]] && F["$1.${kv%%=*}"]=${kv#*=}
    done
}

# Runs sockbench once (bounded by SB_TIMEOUT); dies on any error it reports.
sb() { # key label mode args...
    local key=$1 label=$2 mode=$3 out="$TMP/sb-$1.out" r
    shift 3
    say "sockbench $mode $* ($label)"
    if ! timeout -k 5 "${SB_TIMEOUT:-180}" "${PIN[@]}" "$SB" "$mode" "$@" \
        >"$out" 2>"$TMP/sb-$key.err"; then
        sed 's/^/    /' "$TMP/sb-$key.err" "$out" >&2
        die "sockbench $mode failed ($label)"
    fi
    r=$(grep '^RESULT ' "$out" | tail -n 1)
    [[ -n $r ]] || die "no RESULT line from sockbench $mode ($label)"
    printf '    %s\n' "$r"
    take_result "$key" "$r"
    LABEL[$key]=$label
    ORDER+=("$key")
}

# --- checks and report -----------------------------------------------------------
# Checks a JSON answer with a python expression over `d`; dies with the answer otherwise.
check_json() { # what json expr
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>/dev/null || die "$1: unexpected answer: ${2:0:400}"
}

print_gateway_log() {
    if [[ -s $TMP/gateway.log ]]; then
        echo
        echo "  gateway stderr (log level warn) during the runs, last lines:"
        tail -n 10 "$TMP/gateway.log" | sed 's/^/    /'
    fi
}

finish() {
    if [[ $STRICT == 1 && $MISSED -gt 0 ]]; then
        echo
        echo "$BENCH_NAME: $MISSED target(s) missed (STRICT=1)" >&2
        exit 1
    fi
    exit 0
}
