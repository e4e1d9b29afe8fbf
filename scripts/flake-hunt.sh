#!/usr/bin/env bash
# Runs meson test suites over and over, as CI runs them (two tests at a time), half of the
# rounds with a busy loop on one core (CI machines are shared), and tallies every failure.
#
#   scripts/flake-hunt.sh [--rounds N] [--build DIR] SUITE...
#
# Default: 10 rounds of each suite in build-test/; rounds alternate quiet / loaded. Each
# failing round's log is kept in DIR/flake-hunt/ (meson's testlog), and the last line sums
# up: "SUITE: N rounds (N loaded), F failed: test (round), ...". Exit 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=10
build=build-test
suites=()
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) suites+=("$1"); shift ;;
    esac
done
[ "${#suites[@]}" -gt 0 ] || { echo "flake-hunt: name at least one suite" >&2; exit 2; }
[ -d "$build" ] || { echo "flake-hunt: no build directory $build (meson setup $build first)" >&2; exit 2; }
if ! built=$(ninja -C "$build" 2>&1); then echo "$built" >&2; exit 1; fi
for suite in "${suites[@]}"; do
    # meson runs nothing, and says OK, for a suite name it does not know.
    # (Listed first, then searched: `grep -q` quitting early would SIGPIPE meson under pipefail.)
    listed=$(meson test -C "$build" --list --suite "$suite" 2>/dev/null || true)
    if ! grep -q ' / ' <<<"$listed"; then
        echo "flake-hunt: no tests in suite '$suite' (meson test -C $build --list)" >&2
        exit 2
    fi
done

out="$build/flake-hunt"
mkdir -p "$out"
busy=""
stop_busy() { if [ -n "$busy" ]; then kill "$busy" 2>/dev/null || true; wait "$busy" 2>/dev/null || true; busy=""; fi; }
trap stop_busy EXIT

status=0
for suite in "${suites[@]}"; do
    failures=()
    loaded_rounds=0
    for round in $(seq 1 "$rounds"); do
        loaded=$(( round % 2 == 0 ))
        how=quiet
        if [ "$loaded" -eq 1 ]; then
            how=loaded
            loaded_rounds=$((loaded_rounds + 1))
            # One core busy for the whole round; bounded by the round itself (killed after).
            ( while :; do :; done ) &
            busy=$!
        fi
        start=$(date +%s)
        if meson test -C "$build" --suite "$suite" --num-processes 2 --print-errorlogs \
                >"$out/$suite.$round.log" 2>&1; then
            rm -f "$out/$suite.$round.log"
            result=ok
        else
            result=FAIL
            # The results before meson's "Summary of Failures", which lists each failure again.
            for t in $(sed '/^Summary of Failures/q' "$out/$suite.$round.log" |
                       grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' |
                       sed -E 's/^ *[0-9]+\/[0-9]+ +[^ ]+ +\/ +([^ ]+).*/\1/' | sort -u); do
                failures+=("$t (round $round, $how)")
            done
            status=1
        fi
        stop_busy
        echo "$suite round $round/$rounds ($how): $result in $(( $(date +%s) - start )) s"
    done
    summary="$suite: $rounds rounds ($loaded_rounds loaded), ${#failures[@]} failed"
    [ "${#failures[@]}" -eq 0 ] || summary+=": $(IFS=,; echo "${failures[*]}")"
    echo "$summary" | tee -a "$out/summary.txt"
done
exit "$status"
