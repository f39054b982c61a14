#!/bin/sh
# Compiles the tree (no tests run) in every build type with gcc and clang,
# plain and with -Db_sanitize=address,undefined, under the project's
# -Werror. Warnings depend on the compiler, the optimization level and the
# sanitizer instrumentation (gcc's -Wformat-truncation, -Wmaybe-uninitialized,
# -Wstringop-* only fire at some -O levels), so a build type nobody builds
# would otherwise break unnoticed.
#
# The two builds `make test` makes (gcc debugoptimized, gcc debug + ASan/UBSan)
# are left out unless MATRIX_ALL=1: CI builds them anyway.
#
#   scripts/build-matrix.sh                  # the rest of the matrix
#   MATRIX_ALL=1 scripts/build-matrix.sh     # everything
#
# Settings (environment): MATRIX_DIR (a new temporary directory, removed at
# the end), MATRIX_JOBS (ninja -j). Exits non-zero if any build fails, after
# trying them all; the failing build's log is printed.
set -u
cd "$(dirname "$0")/.."

scripts/install-deps.sh clang
top=$(pwd)
own_dir=0
if [ -z "${MATRIX_DIR:-}" ]; then
    MATRIX_DIR=$(mktemp -d "${TMPDIR:-/tmp}/visavis-matrix.XXXXXX")
    own_dir=1
fi
jobs=${MATRIX_JOBS:+-j $MATRIX_JOBS}
status=0
count=0
start=$(date +%s)

for cc in gcc clang; do
    for san in none address,undefined; do
        for bt in plain debug debugoptimized release minsize; do
            if [ "${MATRIX_ALL:-0}" != 1 ] && [ "$cc" = gcc ]; then
                [ "$san" = none ] && [ "$bt" = debugoptimized ] && continue
                [ "$san" != none ] && [ "$bt" = debug ] && continue
            fi
            name="$cc-$bt-$(echo "$san" | tr ',' '+')"
            dir="$MATRIX_DIR/$name"
            log="$MATRIX_DIR/$name.log"
            count=$((count + 1))
            # b_lundef=false: clang's sanitizer runtimes leave symbols for the
            # executable to resolve (as the asan build in scripts/test.sh).
            # shellcheck disable=SC2086
            if CC=$cc meson setup "$dir" "$top" --buildtype="$bt" -Db_sanitize="$san" \
                -Db_lundef=false >"$log" 2>&1 && ninja -C "$dir" -k 0 $jobs >>"$log" 2>&1; then
                echo "ok   $name"
            else
                echo "FAIL $name"
                tail -n 40 "$log"
                status=1
            fi
            rm -rf "$dir"
        done
    done
done

echo "build matrix: $count builds in $(($(date +%s) - start)) s, $([ $status -eq 0 ] && echo 'all clean' || echo 'FAILED')"
[ "$own_dir" -eq 1 ] && rm -rf "$MATRIX_DIR"
exit $status
