#!/usr/bin/env bash
# bench/probe_speed.sh — is tcpecho-probe ever what limits a benchmark?
#
# Starts one release tcpechod (workers = 1, as in bench/run.sh) on 127.0.0.1, then drives it
# alternately with bench/loadgen (the minimal C client: no verification, one latency bucket
# per round trip) and with tcpecho-probe (verifies every byte, log-linear latency histogram)
# with the same settings, and prints both side by side with the ratio probe ÷ loadgen:
#
#   pp1     64-byte ping-pong, 1 connection, 1 client thread (loadgen: blocking recv/send)
#   pp100   64-byte ping-pong, 100 connections, 1 client thread (loadgen: level-triggered epoll)
#   stream  full duplex on 1 connection, BYTES each way (loadgen bulk: a sender and a reader
#           thread, 1 MiB buffers; probe: --workload stream, 1 MiB messages, 4 MiB window, 1 thread)
#   sys     once, after the rounds: pp1 and pp100 again with each client under `perf stat -e
#           raw_syscalls:sys_enter,...` (its own syscalls, whole process): syscalls per message
#
# Each round runs every scenario on both clients back to back (which one goes first alternates
# by round), so the machine's slow and fast spells hit both; the ratio is taken per round and
# the median of those is the verdict. A pair during which other processes took CPU (> 0.2
# CPUs, stream 0.6) is set aside and run once more. Ping-pong runs with the server pinned to
# CPU 0 and the client to CPU 1 (as bench/run.sh); stream floats.
#
# Usage: bench/probe_speed.sh [--quick] [--rounds N] [--duration S] [--bytes N] [--threads T]
#                             [--profile] [--no-build] [--no-pin] [--no-stream] [--out DIR]
#   --quick     2 rounds of 2 s, 256 MiB stream: about 1 minute (default: 5 rounds of 4 s, 1 GiB:
#               about 3 minutes, longer while it waits for a quiet machine)
#   --threads   client threads for the ping-pong scenarios (loadgen -t, probe -T; default 1)
#   --profile   also `perf record -e cpu-clock -g` each client during pp100 and stream and keep
#               the top of `perf report` (this VM has no PMU: timer samples)
# Environment: QUIET_BUDGET=S caps the total time spent waiting for a quiet machine (default
# 90 s, 20 s with --quick; 0 = do not wait).
# Loopback only; every loop is bounded (clients have their own timeouts, the server is killed
# by PID on exit).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh" # write_tcpechod_config

ROUNDS=5
DURATION=4
BYTES=$((1 << 30))
THREADS=1
PROFILE=0
BUILD=1
PIN=1
STREAM=1
OUT=""
QUIET_DEFAULT=90

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while (($#)); do
    case "$1" in
    --quick) ROUNDS=2 DURATION=2 BYTES=$((256 << 20)) QUIET_DEFAULT=20 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --bytes) BYTES=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --profile) PROFILE=1 ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --no-stream) STREAM=0 ;;
    --out) OUT=$2; shift ;;
    -h | --help) usage 0 ;;
    *) echo "probe_speed.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ && $DURATION =~ ^[1-9][0-9]?$ && $BYTES =~ ^[0-9]+$ && $THREADS =~ ^[1-9]$ ]] ||
    { echo "probe_speed.sh: bad numeric option" >&2; exit 2; }
((BYTES >= 1 << 20)) || { echo "probe_speed.sh: --bytes must be at least 1 MiB" >&2; exit 2; }

log() { printf '[probe-speed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---- build --------------------------------------------------------------------------------
for tool in gcc python3 meson ninja perf taskset; do
    command -v "$tool" >/dev/null || { echo "probe_speed.sh: $tool missing (bench/run.sh installs everything)" >&2; exit 1; }
done
if ((BUILD)); then
    log "building a release tcpechod and tcpecho-probe in build-release/"
    if [[ -f $ROOT/build-release/build.ninja ]]; then
        meson configure "$ROOT/build-release" -Dbuildtype=release -Dtests=false >/dev/null
    else
        meson setup "$ROOT/build-release" "$ROOT" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$ROOT/build-release" daemon/tcpechod tools/tcpecho-probe >/dev/null
fi
TCPECHOD=$ROOT/build-release/daemon/tcpechod
PROBE=$ROOT/build-release/tools/tcpecho-probe
REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- daemon tools 2>/dev/null || echo ' + uncommitted changes in daemon/ or tools/')"
[[ -x $TCPECHOD && -x $PROBE ]] || { echo "probe_speed.sh: $TCPECHOD or $PROBE missing (drop --no-build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tcpecho-probe-speed.XXXXXX)
[[ -n $OUT ]] || OUT="$BENCH/results/probe-speed-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
gcc -O2 -g -Wall -Wextra -pthread -o "$WORK/loadgen" "$BENCH/loadgen.c"
LOADGEN=$WORK/loadgen

# ---- server -------------------------------------------------------------------------------
SPID=""
cleanup() {
    if [[ -n $SPID ]]; then
        kill "$SPID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SPID" 2>/dev/null || true
        cp "$WORK/server.log" "$OUT/server.log" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

write_tcpechod_config "$WORK/tcpechod.toml" 1
"$TCPECHOD" --config "$WORK/tcpechod.toml" >"$WORK/server.log" 2>&1 &
SPID=$!
PORT=""
for _ in $(seq 100); do
    PORT=$(grep -m1 -oE 'address=127\.0\.0\.1:[0-9]+' "$WORK/server.log" 2>/dev/null | grep -oE '[0-9]+$' || true)
    [[ -n $PORT ]] && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
done
[[ -n $PORT ]] || { echo "probe_speed.sh: tcpechod did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
log "tcpechod pid=$SPID port=$PORT; results in $OUT"

CLIENT=()
place() { # pinned|float
    local cpus="0-$(($(nproc) - 1))"
    CLIENT=()
    if [[ $1 == pinned ]] && ((PIN)) && (($(nproc) >= 2)); then cpus=0 CLIENT=(taskset -c 1); fi
    taskset -a -p -c "$cpus" "$SPID" >/dev/null
}

QUIET_BUDGET=${QUIET_BUDGET:-$QUIET_DEFAULT}
wait_quiet() {
    ((QUIET_BUDGET > 0)) || return 0
    local max=$((QUIET_BUDGET < 15 ? QUIET_BUDGET : 15)) out waited
    out=$("$LOADGEN" quiet -d "$max")
    waited=$(grep -oE 'waited_s=[0-9]+' <<<"$out" | cut -d= -f2)
    QUIET_BUDGET=$((QUIET_BUDGET - ${waited:-0}))
    grep -q 'busy_cpus=0\.[01]' <<<"$out" || log "machine busy before this step: ${out#result mode=quiet }"
}

alive() {
    kill -0 "$SPID" 2>/dev/null && return 0
    log "!! tcpechod is gone; its log:"
    tail -5 "$WORK/server.log" >&2
    exit 1
}

# CPU seconds from /proc: a process (all its threads), and the whole machine's busy time.
proc_cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($12 + $13) / hz}'; }
machine_busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit}' /proc/stat; }
# CPU of this shell's reaped children (bash `times`, second line), in seconds. Must run in
# this shell, not in $(...): a subshell has its own, empty, children account.
children_cpu_to() {
    times >"$1"
}
children_cpu_s() { awk 'NR == 2 { t = 0; for (i = 1; i <= 2; ++i) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.3f", t }' "$1"; }

record() { # round scenario client key=value...
    local r=$1 sc=$2 c=$3
    shift 3
    echo "round=$r scenario=$sc client=$c $*" >>"$RESULTS"
}

run_loadgen() { # round scenario args...
    local r=$1 sc=$2 out rc=0
    shift 2
    alive
    out=$("${CLIENT[@]}" "$LOADGEN" "$@" -P "$PORT" -p "$SPID" 2>"$WORK/lg.err") || rc=$?
    cat "$WORK/lg.err" >>"$OUT/loadgen.stderr"
    if ((rc)) || ! grep -q '^result ' <<<"$out"; then
        log "!! loadgen $sc failed (rc=$rc): $(head -c 300 "$WORK/lg.err")"
        record "$r" "$sc" loadgen failed=rc$rc
        return 0
    fi
    record "$r" "$sc" loadgen "$(grep '^result ' <<<"$out" | sed 's/^result //')"
}

# The probe reports messages/s over its whole run (no warm-up; a run starts once every
# connection is up). Server, client and other processes' CPU are taken around that run.
run_probe() { # round scenario args...
    local r=$1 sc=$2 rc=0 s0 s1 b0 b1 c0 c1 json=$WORK/probe.json
    shift 2
    alive
    s0=$(proc_cpu_s "$SPID")
    b0=$(machine_busy_s)
    children_cpu_to "$WORK/times0"
    "${CLIENT[@]}" "$PROBE" "$@" --no-progress -J "127.0.0.1:$PORT" >"$json" 2>"$WORK/probe.err" || rc=$?
    children_cpu_to "$WORK/times1"
    s1=$(proc_cpu_s "$SPID")
    b1=$(machine_busy_s)
    c0=$(children_cpu_s "$WORK/times0")
    c1=$(children_cpu_s "$WORK/times1")
    cat "$WORK/probe.err" >>"$OUT/probe.stderr"
    cp "$json" "$OUT/probe-$sc-r$r.json"
    local line
    if ! line=$(python3 - "$json" "$rc" "$s0" "$s1" "$b0" "$b1" "$c0" "$c1" <<'EOF'
import json, sys
path, rc, s0, s1, b0, b1, c0, c1 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
d = json.load(open(path))
t, lat, rv = d["totals"], d["latency_us"], d["recv"]
if rc != 0 or d["result"]["status"] != "ok":
    raise SystemExit(f"status={d['result']['status']} rc={rc} errors={d['result'].get('errors', [])[:1]}")
m, secs = t["messages_verified"], t["seconds"]
server, client = s1 - s0, c1 - c0
print(f"secs={secs:.3f} msgs={m} msgs_s={t['messages_per_second']:.0f} mib_s={t['bytes_per_second'] / 2**20:.1f} "
      f"p50_us={lat['p50']:.1f} p99_us={lat['p99']:.1f} p999_us={lat['p99_9']:.1f} "
      f"server_cpu_s={server:.3f} server_cpu_us_per_msg={server * 1e6 / m:.3f} "
      f"client_cpu_s={client:.3f} client_cpu_us_per_msg={client * 1e6 / m:.3f} "
      f"other_cpu_s={b1 - b0 - server - client:.2f} send_calls={t['send_calls']} recv_calls={rv['calls']} "
      f"recv_eagain={rv['eagain']}")
EOF
    ); then
        log "!! probe $sc failed (rc=$rc): $(head -c 300 "$WORK/probe.err") $line"
        record "$r" "$sc" probe failed=rc$rc
        return 0
    fi
    record "$r" "$sc" probe "$line"
}

# Other processes' CPUs during a window above which the pair is run again: ping-pong 0.2;
# stream 0.6: there, even on a quiet machine, 0.1-0.5 CPUs of the probe's windows (0-0.15 of
# loadgen's) are busy time that /proc charges to neither client nor server (softirq time
# taken outside both, it seems; more while the server idles waiting for the probe).
# probe_speed_report.py marks windows with the same limits.
noisy_pair() { # round scenario
    awk -v r="$1" -v sc="$2" '
        $1 == "round=" r && $2 == "scenario=" sc {
            for (i = 3; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
            lim = sc == "stream" ? 0.6 : 0.2
            if (v["secs"] > 0 && v["other_cpu_s"] / v["secs"] > lim) noisy = 1
        }
        END { exit noisy ? 0 : 1 }' "$RESULTS"
}

pp_loadgen() { run_loadgen "$1" "$2" pingpong -c "$3" -s 64 -t "$THREADS" -w 1 -d "$DURATION" -T 60; }
pp_probe() { run_probe "$1" "$2" -c "$3" -T "$THREADS" -s 64 -t "${DURATION}s" --timeout 10s; }
stream_loadgen() { run_loadgen "$1" stream bulk -n "$BYTES" -T 120; }
stream_probe() { run_probe "$1" stream --workload stream -c 1 -T 1 -s 1M --window 4M -n $((BYTES >> 20)) --timeout 10s; }

# ---- rounds -------------------------------------------------------------------------------
start_time=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
    first=loadgen second=probe
    ((r % 2)) || { first=probe second=loadgen; }
    for sc in pp1 pp100 stream; do
        [[ $sc != stream ]] || ((STREAM)) || continue
        for attempt in 1 2; do
            wait_quiet
            again=""
            if ((attempt > 1)); then again=" (again)"; fi
            log "round $r/$ROUNDS: $sc, $first then $second$again"
            if [[ $sc == stream ]]; then
                place float
                for c in "$first" "$second"; do "stream_$c" "$r"; done
            else
                place pinned
                for c in "$first" "$second"; do "pp_$c" "$r" "$sc" "${sc#pp}"; done
            fi
            # Another job took CPU during either window: set the pair aside (round=Nn, kept in
            # results.txt, left out of the medians) and run it once more.
            if ((attempt > 1)) || ! noisy_pair "$r" "$sc"; then break; fi
            log "round $r: $sc: other processes took CPU during the pair; set aside, once more"
            sed -i "/^round=$r scenario=$sc /s/^round=$r /round=${r}n /" "$RESULTS"
        done
    done
done

# ---- syscalls per message, each client under perf stat (once) ------------------------------
EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait2,syscalls:sys_enter_setsockopt
if perf stat -e "$EVENTS" true >/dev/null 2>&1; then
    place pinned
    for sc in pp1 pp100; do
        conns=${sc#pp}
        wait_quiet
        log "syscalls: $sc under perf stat, loadgen then probe"
        # loadgen with -w 0: its window is nearly its whole life (connects and thread start
        # add ~2 syscalls per connection); the probe's counts cover its whole run likewise.
        CLIENT_SAVE=("${CLIENT[@]}")
        CLIENT=(perf stat -x "," -o "$WORK/perf-loadgen.csv" -e "$EVENTS" -- "${CLIENT_SAVE[@]}")
        run_loadgen sys "$sc" pingpong -c "$conns" -s 64 -t "$THREADS" -w 0 -d "$DURATION" -T 60
        CLIENT=(perf stat -x "," -o "$WORK/perf-probe.csv" -e "$EVENTS" -- "${CLIENT_SAVE[@]}")
        run_probe sys "$sc" -c "$conns" -T "$THREADS" -s 64 -t "${DURATION}s" --timeout 10s
        CLIENT=("${CLIENT_SAVE[@]}")
        for c in loadgen probe; do
            cp "$WORK/perf-$c.csv" "$OUT/perf-sys-$sc-$c.csv"
            record sys "$sc" "$c" "$(awk -F, '$3 ~ /sys_enter/ { n = $3; sub(/^.*sys_enter_?/, "", n); if (n == "") n = "all"; printf "sys_%s=%s ", n, $1 }' "$WORK/perf-$c.csv")"
        done
    done
else
    log "perf syscall tracepoints unavailable: no syscall counts"
fi

# ---- profile (optional) -------------------------------------------------------------------
if ((PROFILE)); then
    for sc in pp100 stream; do
        [[ $sc != stream ]] || ((STREAM)) || continue
        for c in loadgen probe; do
            wait_quiet
            log "profile: $sc, $c under perf record -e cpu-clock -g"
            if [[ $sc == stream ]]; then place float; else place pinned; fi
            CLIENT_SAVE=("${CLIENT[@]}")
            CLIENT=(perf record -q -e cpu-clock -F 4000 -g -o "$WORK/perf-$c.data" -- "${CLIENT_SAVE[@]}")
            if [[ $sc == stream ]]; then "stream_$c" prof; else "pp_$c" prof pp100 100; fi
            CLIENT=("${CLIENT_SAVE[@]}")
            perf report -i "$WORK/perf-$c.data" --stdio --no-children --sort dso,sym 2>/dev/null |
                grep -E '^ +[0-9]+\.[0-9]+%' | head -60 >"$OUT/profile-$sc-$c.txt" || true
            perf report -i "$WORK/perf-$c.data" --stdio --no-children --sort dso 2>/dev/null |
                grep -E '^ +[0-9]+\.[0-9]+%' | head -10 >"$OUT/profile-$sc-$c-dso.txt" || true
        done
    done
fi
log "took $((SECONDS - start_time)) s"

# ---- report -------------------------------------------------------------------------------
{
    echo "# bench/probe_speed.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), tcpechod and tcpecho-probe at $REV, release build"
    echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), kernel $(uname -r)"
    echo "# load average before/after: $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# ping-pong placement: $(if ((PIN)); then echo 'server on CPU 0, client on CPU 1'; else echo 'scheduler (--no-pin)'; fi); stream: scheduler"
    echo "# rounds=$ROUNDS duration=${DURATION}s stream_bytes=$BYTES client_threads=$THREADS"
} >"$OUT/header.txt"
python3 "$BENCH/probe_speed_report.py" "$OUT/header.txt" "$RESULTS" "$OUT" | tee "$OUT/report.txt"
log "raw results: $RESULTS"
