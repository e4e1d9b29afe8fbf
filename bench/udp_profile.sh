#!/usr/bin/env bash
# bench/udp_profile.sh — where a UDP echo server's time goes at 100 flows.
#
# Starts the servers of bench/udp_run.sh (release tcpechod, default workers and
# udp_rate_limit = 0; udp_echo_minimal; optionally tcpechod-w1 with workers = 1), and for each
# one, under udp_loadgen's load (-f FLOWS -W WINDOW -t THREADS, 64-byte datagrams), runs one
# tool per load window of SECS seconds:
#   threads   CPU of each server thread (/proc/PID/task/*/stat) and datagrams/s
#   stat      perf stat -p PID: context switches, migrations and syscalls per datagram
#   batches   perf record -e syscalls:sys_exit_recvmmsg,syscalls:sys_exit_sendmmsg: the
#             distribution of datagrams per recvmmsg and per sendmmsg (tcpechod only)
#   profile   perf record -g -e cpu-clock -p PID: kernel vs user share (by DSO), top symbols
#   strace    strace -c -f -p PID (slows the server: its counts are from a disturbed run)
# Output: a text report on stdout, also saved with the raw perf data in
# bench/results/udp-profile-DATE/.
#
# Usage: bench/udp_profile.sh [--servers LIST] [--seconds S] [--flows F] [--window W]
#                             [--threads T] [--no-build] [--out DIR]
# Defaults: tcpechod,minimal; 3 s; 100 flows, window 1, 2 client threads (udp_run.sh's f100).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SERVERS="tcpechod,minimal"
SECS=3
FLOWS=100
WINDOW=1
THREADS=2
BUILD=1
OUT=""
while (($#)); do
    case "$1" in
    --servers) SERVERS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --flows) FLOWS=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "udp_profile.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $SECS =~ ^[1-9][0-9]?$ && $FLOWS =~ ^[1-9][0-9]*$ && $WINDOW =~ ^[1-9][0-9]?$ && $THREADS =~ ^[1-9]$ ]] ||
    { echo "udp_profile.sh: bad numeric option" >&2; exit 2; }
log() { printf '[udp-profile %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
command -v perf >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends linux-perf >&2
command -v strace >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends strace >&2

if ((BUILD)); then
    if [[ -f $ROOT/build-release/build.ninja ]]; then
        meson configure "$ROOT/build-release" -Dbuildtype=release -Dtests=false >/dev/null
    else
        meson setup "$ROOT/build-release" "$ROOT" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$ROOT/build-release" daemon/tcpechod >/dev/null
fi
TCPECHOD=$ROOT/build-release/daemon/tcpechod
WORK=$(mktemp -d /tmp/tcpecho-udp-profile.XXXXXX)
[[ -n $OUT ]] || OUT="$BENCH/results/udp-profile-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
gcc -O2 -g -Wall -Wextra -pthread -o "$WORK/udp_loadgen" "$BENCH/udp_loadgen.c"
gcc -O2 -g -Wall -Wextra -o "$WORK/udp_echo_minimal" "$BENCH/udp_echo_minimal.c"

declare -A PID PORT
STARTED=()
cleanup() {
    local name
    for name in "${STARTED[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
    sleep 0.5
    for name in "${STARTED[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_server() {
    local name=$1 logf=$WORK/$1.log pid port="" workers=""
    case "$name" in
    tcpechod | tcpechod-w1)
        [[ $name == tcpechod-w1 ]] && workers="workers = 1"
        printf '%s\nlog_level = "notice"\ndrain_timeout = 1\n[[listen]]\nname = "udp"\naddress = "127.0.0.1"\nport = 0\nproto = "udp"\nudp_rate_limit = 0\nudp_burst = 0\n' \
            "$workers" >"$WORK/$name.toml"
        "$TCPECHOD" --config "$WORK/$name.toml" >"$logf" 2>&1 &
        ;;
    minimal) "$WORK/udp_echo_minimal" 127.0.0.1 0 >"$logf" 2>&1 & ;;
    *) echo "udp_profile.sh: unknown server $name" >&2; exit 2 ;;
    esac
    pid=$!
    PID[$name]=$pid
    STARTED+=("$name")
    for _ in $(seq 100); do
        port=$(grep -m1 -oE 'listening.*address=127\.0\.0\.1:[0-9]+' "$logf" 2>/dev/null | grep -oE '[0-9]+$' || true)
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $port ]] || { echo "udp_profile.sh: $name did not start:" >&2; cat "$logf" >&2; exit 1; }
    PORT[$name]=$port
    log "started $name pid=$pid port=$port"
}
IFS=, read -r -a LIST <<<"$SERVERS"
for s in "${LIST[@]}"; do start_server "$s"; done

# load SERVER: udp_loadgen in the background for SECS + 2 s; its result goes to $WORK/load.out
load() {
    "$WORK/udp_loadgen" -f "$FLOWS" -W "$WINDOW" -t "$THREADS" -w 1 -d $((SECS + 1)) -P "${PORT[$1]}" -p "${PID[$1]}" \
        -T 60 >"$WORK/load.out" 2>&1 &
    LOAD_PID=$!
    sleep 1.3
}
load_done() { # sets RES="dgrams_s=... server_cpu_us_per_dgram=..." (in this shell: it waits for the client)
    wait "$LOAD_PID" || true
    RES=$(grep '^result' "$WORK/load.out" | tr ' ' '\n' | grep -E '^(dgrams_s|server_cpu_us_per_dgram|lost)=' | tr '\n' ' ')
    RES=${RES% }
}
thread_ticks() { # pid -> "tid:comm:ticks ..." (utime+stime)
    local t
    for t in /proc/"$1"/task/*; do
        awk -v tid="${t##*/}" '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); c = $2; print tid ":" c ":" f[12] + f[13] }' "$t/stat"
    done
}

{
    echo "# bench/udp_profile.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
    echo "# tcpechod $(git -C "$ROOT" rev-parse --short HEAD), load: udp_loadgen -f $FLOWS -W $WINDOW -t $THREADS, 64 B; ${SECS} s per tool"
    for s in "${LIST[@]}"; do
        echo
        echo "=== $s"
        # threads
        load "$s"
        before=$(thread_ticks "${PID[$s]}")
        sleep "$SECS"
        after=$(thread_ticks "${PID[$s]}")
        load_done
        echo "threads: CPU share of each thread over ${SECS} s ($RES)"
        join -t: -j1 <(sort <<<"$before" | awk -F: '{print $1 ":" $2 " " $3}' | tr ' ' ':') \
            <(sort <<<"$after" | awk -F: '{print $1 ":" $3}') |
            awk -F: -v secs="$SECS" -v hz="$(getconf CLK_TCK)" '{ printf "  tid %s %-16s %.2f CPUs\n", $1, $2, ($4 - $3) / hz / secs }'
        # perf stat
        load "$s"
        perf stat -x, -o "$WORK/stat.out" -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter \
            -p "${PID[$s]}" -- sleep "$SECS" 2>/dev/null || true
        load_done
        dg=$(grep -oE 'dgrams_s=[0-9]+' <<<"$RES" | cut -d= -f2)
        echo "perf stat ($RES):"
        awk -F, -v rate="${dg:-0}" -v secs="$SECS" '$3 != "" && $1 ~ /^[0-9.]+$/ {
            n = (rate > 0) ? $1 / (rate * secs) : 0
            if ($3 == "task-clock") printf "  %-28s %.2f CPUs\n", $3, $1 / 1000 / secs
            else printf "  %-28s %10.0f  %.3f per datagram\n", $3, $1, n }' "$WORK/stat.out"
        cp "$WORK/stat.out" "$OUT/stat-$s.csv"
        # batch sizes
        if [[ $s == tcpechod* ]]; then
            load "$s"
            perf record -q -o "$WORK/batches.data" -e syscalls:sys_exit_recvmmsg,syscalls:sys_exit_sendmmsg \
                -p "${PID[$s]}" -- sleep "$SECS" >/dev/null 2>&1 || true
            load_done
            echo "batches ($RES):"
            perf script -i "$WORK/batches.data" -F event,trace 2>/dev/null | python3 -c '
import collections, sys
calls = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    f = line.split()
    if len(f) < 2:
        continue
    ev = "recvmmsg" if "recvmmsg" in f[0] else "sendmmsg"
    r = int(f[-1], 0)
    calls[ev][min(r, 9) if r >= 0 else -1] += 1
for ev in ("recvmmsg", "sendmmsg"):
    c = calls[ev]
    n = sum(c.values())
    if not n:
        continue
    dg = sum(k * v for k, v in c.items() if k > 0)
    parts = " ".join(("%s:%.0f%%" % (k if k < 9 else "9+", 100 * v / n)) for k, v in sorted(c.items()))
    print(f"  {ev}: {n} calls, {dg / n:.2f} datagrams per call (9+ counted as 9); calls by return value: {parts}")
'
            cp "$WORK/batches.data" "$OUT/batches-$s.data" 2>/dev/null || true
        fi
        # cpu profile
        load "$s"
        perf record -q -g -e cpu-clock -o "$WORK/prof.data" -p "${PID[$s]}" -- sleep "$SECS" >/dev/null 2>&1 || true
        load_done
        echo "profile ($RES): samples by DSO"
        perf report -i "$WORK/prof.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -6 | sed 's/^/ /' || true
        echo "  top symbols (self):"
        perf report -i "$WORK/prof.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 | sed 's/^/ /' || true
        cp "$WORK/prof.data" "$OUT/profile-$s.data" 2>/dev/null || true
        # strace
        load "$s"
        timeout -s INT "$SECS" strace -c -f -p "${PID[$s]}" -o "$WORK/strace.out" 2>/dev/null || true
        load_done
        echo "strace -c -f (server slowed by strace; $RES):"
        sed 's/^/  /' "$WORK/strace.out"
    done
} | tee "$OUT/profile.txt"
log "saved in $OUT"
