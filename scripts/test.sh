#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: once as a normal build and
# once with AddressSanitizer + UndefinedBehaviorSanitizer; then runs the libFuzzer targets
# (clang) for 60 s each. Warnings are errors.
#   --fast   skip the sanitizer build and the fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
[ "${1:-}" = "--fast" ] && fast=1

scripts/setup-deps.sh test

# run_suite DIR [meson setup options...] [-- meson test options...]
run_suite() {
    local dir=$1; shift
    local setup=() test=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    test=("$@")
    if [ -d "$dir" ]; then
        meson setup --reconfigure "$dir" -Dwerror=true "${setup[@]}" >/dev/null
    else
        meson setup "$dir" -Dwerror=true "${setup[@]}" >/dev/null
    fi
    ninja -C "$dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "${test[@]}"
}

echo "== build and test (debugoptimized)"
run_suite build-test
if [ "$fast" -eq 0 ]; then
    echo "== build and test (ASan + UBSan)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite build-sanitize -Db_sanitize=address,undefined -Db_lundef=false \
            -- --no-suite rpm --no-suite package --no-suite system --no-suite faults
    # (packages are built from the sources by their own tools, and the system suite installs
    # the build into a booted tree: neither tests the sanitized binaries, the first pass ran them;
    # the fault-injection suite runs once, and tests/soak runs a sanitized daemon under loss)
fi
if [ "$fast" -eq 0 ]; then
    # libFuzzer targets (clang) for 60 s each, three at a time (docs/fuzzing.md; CI's 30 min). meson test
    # builds only what the suite needs: the targets and an instrumented copy of the core.
    echo "== fuzz (clang, libFuzzer + ASan/UBSan, 60 s per target)"
    if [ -d build-fuzz ]; then
        meson setup --reconfigure build-fuzz -Dwerror=true -Dfuzz=true -Db_sanitize=address,undefined \
            -Db_lundef=false >/dev/null
    else
        CC=clang CXX=clang++ meson setup build-fuzz -Dwerror=true -Dfuzz=true -Db_sanitize=address,undefined \
            -Db_lundef=false >/dev/null
    fi
    meson test -C build-fuzz --print-errorlogs --suite fuzz --num-processes 3
fi
echo "ALL TESTS PASSED"
