#!/usr/bin/env bash
# Soak test (docs/reliability.md): builds tcpechod and tcpecho-probe with ASan + UBSan in
# build-soak (unless --build DIR names an existing build), then runs tests/soak/soak.py:
# 10 minutes of 200 mixed-mode connections under 1% loss each way in network namespaces,
# RSS and fd count sampled every 10 s, plateau and sanitizer checks. Needs root.
#   tests/soak/run.sh [--build DIR] [--duration SECONDS] [--out DIR] [soak.py options...]
# Not part of `meson test`: it takes the whole duration (default 600 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build-soak
out="build-soak/soak-$(date +%Y%m%d-%H%M%S)"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

if [ ! -d "$build" ]; then
    meson setup "$build" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dtests=false
fi
ninja -C "$build" daemon/tcpechod tools/tcpecho-probe
mkdir -p "$out"
echo "soak: results in $out"
exec python3 tests/soak/soak.py --tcpechod "$build/daemon/tcpechod" \
    --probe "$build/tools/tcpecho-probe" --out "$out" "${args[@]}"
