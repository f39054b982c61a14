#!/bin/sh
# Runs every test twice: in the normal build, then in a build with
# AddressSanitizer + UndefinedBehaviorSanitizer (less the docker-compose demo,
# which builds its own images and runs none of the sanitized binaries). Ends with the line
# "N passed, N failed" counted over every TAP assertion of both runs, and
# exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}

# The tests' npm packages, as their package-lock.json pin them (never
# committed): the ws client of test_ws_node.py, socket.io-client of
# test_sio_node.py, playwright-core for the browser test. Node.js and npm
# from Debian when missing (make test's install-deps.sh --test installs them
# with chromium). Without them those tests say they skip.
command -v npm >/dev/null 2>&1 || scripts/install-deps.sh nodejs npm || true
for dir in tests/node/ws tests/node/socketio tests/browser; do
    [ -f "$dir/package-lock.json" ] || continue
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && continue
    command -v npm >/dev/null 2>&1 &&
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
        echo "warning: npm ci in $dir failed: its tests will say so" >&2
done
ASAN_BUILD=${ASAN_BUILD:-build-asan}
status=0

run_suite() {
    dir=$1
    setup=$2
    shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        # shellcheck disable=SC2086
        meson setup "$dir" $setup >"$dir.setup.log" 2>&1 || {
            cat "$dir.setup.log" >&2
            return 1
        }
        rm -f "$dir.setup.log"
    fi
    ninja -C "$dir" >/dev/null || ninja -C "$dir" || return 1
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
}

echo "== tests: $BUILD"
run_suite "$BUILD" "" || status=1

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer: $ASAN_BUILD"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite "$ASAN_BUILD" "-Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug" \
        --no-suite compose ||
    status=1

python3 tests/summary.py "$BUILD/meson-logs/testlog.json" "$ASAN_BUILD/meson-logs/testlog.json" ||
    status=1
exit $status
