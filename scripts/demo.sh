#!/usr/bin/env bash
# The main job: install what is missing, build, start tcpechod on its embedded default
# configuration (127.0.0.1:7007 TCP raw and UDP, 127.0.0.1:7008 TCP length), verify every
# listener with tcpecho-probe, and stop the daemon cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh demo
if [ ! -d build ]; then
    meson setup build --buildtype=release -Dtests=false >/dev/null
fi
ninja -C build daemon/tcpechod tools/tcpecho-probe >/dev/null

log=$(mktemp /tmp/tcpechod-demo.XXXXXX.log)
build/daemon/tcpechod 2>"$log" &
daemon=$!
cleanup() { kill "$daemon" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do
    grep -q "ready:" "$log" && break
    if ! kill -0 "$daemon" 2>/dev/null; then
        cat "$log" >&2
        echo "demo: tcpechod did not start (see above)" >&2
        exit 1
    fi
    sleep 0.1
done
cat "$log"
echo

status=0
echo "== raw listener: 4 connections x 2,000 messages of 1 KiB"
build/tools/tcpecho-probe --connections 4 --count 2000 --size 1024 127.0.0.1:7007 || status=$?
echo
echo "== length listener: 1,000 length-prefixed frames of 64 KiB"
build/tools/tcpecho-probe --mode length --count 1000 --size 65536 127.0.0.1:7008 || status=$?
echo
# The shipped config allows 1,000 UDP replies/s per source address, in bursts of 1,000.
echo "== UDP listener: 500 numbered datagrams of 512 bytes, every one verified, no loss allowed"
build/tools/tcpecho-probe --udp --count 500 --size 512 127.0.0.1:7007 || status=$?
echo

kill -TERM "$daemon"
wait "$daemon" || status=$?
trap - EXIT
echo "== tcpechod log after SIGTERM"
tail -n +$(( $(wc -l <"$log") - 1 )) "$log"
rm -f "$log"
echo
if [ "$status" -eq 0 ]; then
    echo "DEMO PASSED: tcpechod echoed every byte on every listener (TCP and UDP) and exited cleanly."
else
    echo "DEMO FAILED (status $status)"
fi
exit "$status"
