#!/usr/bin/env bash
# Bulk echo CPU per GiB, tcpechod against the blocking peer, with tcpecho-probe and loadgen as
# clients, side by side in one run (bench/bulk_cpu.py says how). Builds build-release/ and the
# peers into a scratch dir first. Run on a quiet machine, as root for perf (syscall counts).
#
#   bench/bulk_cpu.sh [--rounds N] [--ref /path/to/other/tcpechod] [--clients probe,loadgen]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ -f build-release/build.ninja ]]; then
    meson configure build-release -Dbuildtype=release -Dtests=false >/dev/null
else
    meson setup build-release --buildtype=release -Dtests=false >/dev/null
fi
ninja -C build-release daemon/tcpechod tools/tcpecho-probe >/dev/null
WORK=$(mktemp -d /tmp/tcpecho-bulk.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -g -Wall -Wextra -pthread -o "$WORK/loadgen" bench/loadgen.c
gcc -O2 -g -Wall -Wextra -pthread -o "$WORK/blocking_echo" bench/peers/blocking_echo.c

ref=()
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --ref) ref=(--ref "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
echo "tcpechod $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/bulk_cpu.py --tcpechod build-release/daemon/tcpechod --blocking "$WORK/blocking_echo" \
    --loadgen "$WORK/loadgen" --probe build-release/tools/tcpecho-probe "${ref[@]}" "${args[@]}"
