#!/usr/bin/env bash
# bench/payload_speed.sh — single-thread speed of the probe's payload generation and
# verification (the target: fill + verify >= 5 GB/s per core, so the probe never limits a benchmark).
#
# Compiles bench/payload_speed.cpp against tools/payload.hpp, tools/message_stream.cpp and
# lib/framer.cpp twice — with -O2 and with -O3 (what `meson --buildtype=release` uses for
# the probe) — into a scratch directory and runs both, each after waiting (bounded) for a
# quiet machine. Prints one table per build: fill, verify and fill+verify GB/s for
# PayloadStream (raw and line mode) and MessageStream (raw and length mode), chunks of 64 B,
# 1 KiB, 64 KiB and 1 MiB. About 1 minute (--quick: 15 s).
#
# Usage: bench/payload_speed.sh [--quick] [--ms MS_PER_CELL] [--rounds N] [--flags "-O2 ..."]
#                               [--root DIR]
#   --flags   build only with these flags (repeatable; default: -O2, then -O3)
#   --root    take tools/ and daemon/ from DIR instead of this repository (e.g. a worktree
#             with a candidate tools/payload.hpp); bench/payload_speed.cpp is always this one
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC_ROOT=$ROOT
ARGS=()
FLAGS=()

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while (($#)); do
    case "$1" in
    --quick) ARGS+=(--quick) ;;
    --ms) ARGS+=(--ms "$2"); shift ;;
    --rounds) ARGS+=(--rounds "$2"); shift ;;
    --flags) FLAGS+=("$2"); shift ;;
    --root) SRC_ROOT=$(cd "$2" && pwd); shift ;;
    -h | --help) usage 0 ;;
    *) echo "payload_speed.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
((${#FLAGS[@]})) || FLAGS=("-O2" "-O3")
command -v g++ >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends g++ >&2

WORK=$(mktemp -d /tmp/tcpecho-payload.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -pthread -o "$WORK/loadgen" "$ROOT/bench/loadgen.c" # for `loadgen quiet`

echo "# bench/payload_speed.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), tools/ of $SRC_ROOT at" \
    "$(git -C "$SRC_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC_ROOT" diff --quiet HEAD -- tools daemon 2>/dev/null || echo ' + uncommitted changes')"
echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(g++ --version | head -1)"
for i in "${!FLAGS[@]}"; do
    f=${FLAGS[$i]}
    # shellcheck disable=SC2086 # the flags are words
    g++ $f -std=c++20 -I"$SRC_ROOT" -I"$SRC_ROOT/daemon" -DPAYLOAD_SPEED_FLAGS="\"g++ $f\"" \
        -o "$WORK/payload_speed$i" "$ROOT/bench/payload_speed.cpp" \
        "$SRC_ROOT/tools/message_stream.cpp" "$SRC_ROOT/lib/framer.cpp"
done
for i in "${!FLAGS[@]}"; do
    q=$("$WORK/loadgen" quiet -d 15 || true)
    echo
    echo "# before this table: ${q#result mode=quiet } (busy_cpus: other work on the machine; 2 CPUs)"
    "$WORK/payload_speed$i" "${ARGS[@]}"
done
