#!/bin/sh
# The fuzz smoke run (as git's ci/run-build-and-minimal-fuzzers.sh): builds
# every target with clang, libFuzzer, ASan and UBSan, replays each over its
# corpus, then fuzzes each for a short time. Exits non-zero when a target
# crashes, leaks, trips a sanitizer or breaks an invariant; the input that did
# it is left in $FUZZ_OUT/<target>/ (reproduce: ./build-fuzz/tests/fuzz/
# fuzz_<target> <that file>). The checked-in corpus is never written to.
#
#   tests/fuzz/smoke.sh                 # 20 s per target
#   FUZZ_TIME=300 tests/fuzz/smoke.sh   # longer
#
# Settings (environment): FUZZ_BUILD (build-fuzz), FUZZ_TIME (seconds per
# target, 20), FUZZ_OUT (a new temporary directory), FUZZ_JOBS (ninja -j).
set -eu
cd "$(dirname "$0")/../.."

BUILD=${FUZZ_BUILD:-build-fuzz}
TIME=${FUZZ_TIME:-20}
OUT=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/visavis-fuzz.XXXXXX")}
TARGETS="proto_line json_body sio_packet"

# clang and its libFuzzer runtime, installed if missing (root or sudo needed then).
scripts/install-deps.sh clang libclang-rt-dev

if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" -Dfuzz=true -Db_lundef=false --buildtype=debugoptimized \
        "-Dc_args=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
        "-Dc_link_args=-fsanitize=address,undefined"
fi
jobs=${FUZZ_JOBS:+-j $FUZZ_JOBS}
# shellcheck disable=SC2086
for t in $TARGETS; do
    ninja -C "$BUILD" $jobs "tests/fuzz/fuzz_$t"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

status=0
for t in $TARGETS; do
    exe="$BUILD/tests/fuzz/fuzz_$t"
    corpus="tests/fuzz/corpus/$t"
    dict="tests/fuzz/dict/$t.dict"
    work="$OUT/$t"
    mkdir -p "$work/new"

    echo "== fuzz_$t: replay the corpus"
    if ! "$exe" -runs=0 -dict="$dict" -artifact_prefix="$work/" "$corpus" >"$work/replay.log" 2>&1; then
        tail -n 40 "$work/replay.log"
        echo "fuzz_$t: FAILED replaying $corpus (log and input in $work)" >&2
        status=1
        continue
    fi
    tail -n 1 "$work/replay.log"

    echo "== fuzz_$t: fuzz for ${TIME}s"
    # New inputs go to $work/new (the first directory), not into the corpus.
    if ! "$exe" -max_total_time="$TIME" -dict="$dict" -artifact_prefix="$work/" \
        -print_final_stats=1 "$work/new" "$corpus" >"$work/fuzz.log" 2>&1; then
        tail -n 40 "$work/fuzz.log"
        echo "fuzz_$t: FAILED while fuzzing (log and input in $work)" >&2
        status=1
        continue
    fi
    grep -E '^Done|stat::number_of_executed_units' "$work/fuzz.log" || true
done

if [ "$status" -eq 0 ]; then
    echo "fuzz smoke: every target passed (work files in $OUT)"
else
    echo "fuzz smoke: FAILED (see $OUT)" >&2
fi
exit $status
