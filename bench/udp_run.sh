#!/usr/bin/env bash
# bench/udp_run.sh — tcpechod's UDP echo against a minimal recvfrom()/sendto() loop,
# side by side in one run.
#
# Builds a release tcpechod (build-release/), compiles bench/udp_echo_minimal.c,
# bench/udp_loadgen.c (and bench/loadgen.c, for its "quiet" wait) into a scratch directory,
# starts every server on 127.0.0.1 and runs, round after round, each scenario on every server
# back to back (each round starts with a different server), then prints the table.
#
# Scenarios (64-byte datagrams, closed loop, every flow its own connected UDP socket):
#   f1     1 flow, WINDOW1 datagrams in flight, one blocking client thread
#   f100   100 flows, WINDOW datagrams in flight each, THREADS client threads (epoll)
# Each window: WARMUP s, then DURATION s measured: datagrams/s and server CPU µs per
# datagram (utime+stime of /proc/PID/stat over the window, user and sys apart).
# Then (unless --no-syscalls) the same scenarios once more per server under
# `perf stat -p PID` (counters enabled by udp_loadgen for exactly its window): syscalls per
# datagram by kind, recvmmsg/sendmmsg batch sizes. CPU is never taken from the perf windows.
#
# Servers (--servers, comma-separated):
#   tcpechod     one UDP listener, udp_rate_limit = 0, workers left at the default
#   tcpechod-rl  the same with udp_rate_limit = udp_burst = 10000000 (10 M replies/s per
#                source, the daemon's maximum: never drops here): the cost of the rate limiter
#   minimal      bench/udp_echo_minimal.c: one thread, blocking recvfrom/sendto
#   tcpechod-w1  (not in the default set) tcpechod with workers = 1
# If the daemon rejects a UDP listener (`--check-config` fails: not supported yet), the
# tcpechod servers are left out with a warning and the rest still runs.
#
# Usage: bench/udp_run.sh [--quick] [--rounds N] [--duration S] [--warmup S] [--window W]
#                         [--window1 W] [--threads T] [--servers LIST] [--no-syscalls]
#                         [--no-build] [--out DIR]
# Defaults: 5 rounds, 2 s windows after 0.5 s warm-up, f100 window 1 and 2 client threads,
# f1 window 1 (ping-pong). --quick: 2 rounds of 1 s windows. About 3 minutes.
# No pinning: tcpechod runs several workers, which pinning the server to one CPU would
# squeeze onto it; the servers and the client float on the machine's CPUs alike.
# Environment: QUIET_BUDGET=S caps the total time spent waiting for a quiet machine
# (default 90 s, 20 s with --quick; 0 = do not wait).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"

ROUNDS=5
DURATION=2
WARMUP=0.5
WINDOW=1
WINDOW1=1
THREADS=2
SERVERS="tcpechod,tcpechod-rl,minimal"
SYSCALLS=1
BUILD=1
OUT=""
QUIET_DEFAULT=90

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while (($#)); do
    case "$1" in
    --quick) ROUNDS=2 DURATION=1 QUIET_DEFAULT=20 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --window) WINDOW=$2; shift ;;
    --window1) WINDOW1=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --no-syscalls) SYSCALLS=0 ;;
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    -h | --help) usage 0 ;;
    *) echo "udp_run.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ && $DURATION =~ ^[1-9][0-9]?$ && $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ &&
    $WINDOW =~ ^[1-9][0-9]?$ && $WINDOW1 =~ ^[1-9][0-9]?$ && $THREADS =~ ^[1-9]$ ]] ||
    { echo "udp_run.sh: bad numeric option" >&2; exit 2; }

log() { printf '[udp-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---- 1. tools -----------------------------------------------------------------------------
missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v python3 >/dev/null || missing+=(python3)
command -v perf >/dev/null || missing+=(linux-perf)
if ((BUILD)); then
    command -v meson >/dev/null || missing+=(meson)
    command -v ninja >/dev/null || missing+=(ninja-build)
fi
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2 || {
        apt-get -o DPkg::Lock::Timeout=600 update >&2
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2
    }
fi

# ---- 2. build -----------------------------------------------------------------------------
if ((BUILD)); then
    log "building a release tcpechod in build-release/"
    if [[ -f $ROOT/build-release/build.ninja ]]; then
        meson configure "$ROOT/build-release" -Dbuildtype=release -Dtests=false >/dev/null
    else
        meson setup "$ROOT/build-release" "$ROOT" --buildtype=release -Dtests=false >/dev/null
    fi
    ninja -C "$ROOT/build-release" daemon/tcpechod >/dev/null
fi
TCPECHOD=$ROOT/build-release/daemon/tcpechod
DAEMON_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- daemon 2>/dev/null || echo ' + uncommitted changes in daemon/')"

WORK=$(mktemp -d /tmp/tcpecho-udp-bench.XXXXXX)
[[ -n $OUT ]] || OUT="$BENCH/results/udp-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
log "scratch $WORK, results in $OUT"
CFLAGS=(-O2 -g -Wall -Wextra)
gcc "${CFLAGS[@]}" -pthread -o "$WORK/udp_loadgen" "$BENCH/udp_loadgen.c"
gcc "${CFLAGS[@]}" -o "$WORK/udp_echo_minimal" "$BENCH/udp_echo_minimal.c"
gcc "${CFLAGS[@]}" -pthread -o "$WORK/loadgen" "$BENCH/loadgen.c"
UDP_LOADGEN=$WORK/udp_loadgen

SYSCALL_TOOL=none
if ((SYSCALLS)); then
    if perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_recvmmsg true >/dev/null 2>"$WORK/perfcheck"; then
        SYSCALL_TOOL=perf
    else
        log "perf syscall tracepoints unavailable ($(head -c 200 "$WORK/perfcheck")): no syscall counts"
    fi
fi

# ---- 3. servers ---------------------------------------------------------------------------
# write_udp_config FILE RATE BURST [WORKERS]: one UDP listener on 127.0.0.1, port 0 (the
# daemon logs the port it got), workers left at the daemon's default unless given,
# notice-level logging.
write_udp_config() {
    if (($# > 3)); then echo "workers = $4" >"$1"; else : >"$1"; fi
    cat >>"$1" <<EOT
log_level = "notice"
drain_timeout = 1
[[listen]]
name = "udp"
address = "127.0.0.1"
port = 0
proto = "udp"
udp_rate_limit = $2
udp_burst = $3
EOT
}

IFS=, read -r -a REQUESTED <<<"$SERVERS"
SERVER_LIST=()
for s in "${REQUESTED[@]}"; do
    case "$s" in
    tcpechod | tcpechod-rl | tcpechod-w1)
        if [[ ! -x $TCPECHOD ]]; then
            log "!! $TCPECHOD missing: $s left out"
            continue
        fi
        write_udp_config "$WORK/$s.toml" 0 0
        if [[ $s == tcpechod-rl ]]; then write_udp_config "$WORK/$s.toml" 10000000 10000000; fi
        if [[ $s == tcpechod-w1 ]]; then write_udp_config "$WORK/$s.toml" 0 0 1; fi
        rc=0
        "$TCPECHOD" --check-config -c "$WORK/$s.toml" >"$WORK/check.out" 2>&1 || rc=$?
        if ((rc)); then
            log "!! tcpechod rejects the UDP config of $s (exit $rc): $(tr '\n' ' ' <"$WORK/check.out" | head -c 300) — $s left out"
            continue
        fi
        ;;
    minimal) ;;
    *) echo "udp_run.sh: unknown server $s" >&2; exit 2 ;;
    esac
    SERVER_LIST+=("$s")
done
((${#SERVER_LIST[@]})) || { echo "udp_run.sh: no server left to run" >&2; exit 1; }

declare -A PID PORT
STARTED=()
cleanup() {
    local name
    for name in "${STARTED[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for name in "${STARTED[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for name in "${STARTED[@]}"; do
        kill -9 "${PID[$name]}" 2>/dev/null || true
        cp "$WORK/$name.log" "$OUT/server-$name.log" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_server() { # name
    local name=$1 logf=$WORK/$1.log pid port=""
    case "$name" in
    tcpechod | tcpechod-rl | tcpechod-w1) "$TCPECHOD" --config "$WORK/$name.toml" >"$logf" 2>&1 & ;;
    minimal) "$WORK/udp_echo_minimal" 127.0.0.1 0 >"$logf" 2>&1 & ;;
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
    [[ -n $port ]] || { echo "udp_run.sh: $name did not start:" >&2; cat "$logf" >&2; exit 1; }
    PORT[$name]=$port
    if [[ -f $WORK/$name.toml ]]; then cp "$WORK/$name.toml" "$OUT/server-$name.toml"; fi
    log "started $name pid=$pid port=$port threads=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)"
}
for s in "${SERVER_LIST[@]}"; do start_server "$s"; done

# ---- 4. scenarios -------------------------------------------------------------------------
record() { # server round scenario result-line
    echo "server=$1 round=$2 scenario=$3 ${4#result }" >>"$RESULTS"
}

alive() {
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    log "!! $1 (pid ${PID[$1]}) is gone; its log:"
    tail -5 "$WORK/$1.log" >&2
    return 1
}

scenario_args() { # scenario -> udp_loadgen arguments
    case "$1" in
    f1) echo "-f 1 -W $WINDOW1 -t 1" ;;
    f100) echo "-f 100 -W $WINDOW -t $THREADS" ;;
    esac
}

run_udp() { # server round scenario
    local s=$1 r=$2 sc=$3 out rc=0
    alive "$s" || { echo "server=$s round=$r scenario=$sc failed=server-died" >>"$RESULTS"; return 0; }
    # shellcheck disable=SC2046
    out=$("$UDP_LOADGEN" $(scenario_args "$sc") -w "$WARMUP" -d "$DURATION" -P "${PORT[$s]}" -p "${PID[$s]}" \
        -T 60 2>"$WORK/lg.err") || rc=$?
    if ((rc)) || ! grep -q '^result ' <<<"$out"; then
        log "!! $s $sc failed (rc=$rc): $(tr '\n' ' ' <"$WORK/lg.err" | head -c 300)"
        echo "server=$s round=$r scenario=$sc failed=loadgen-rc$rc" >>"$RESULTS"
    else
        record "$s" "$r" "$sc" "$(grep '^result ' <<<"$out")"
    fi
    cat "$WORK/lg.err" >>"$OUT/loadgen.stderr"
}

# The server's syscalls over exactly udp_loadgen's window: perf stat starts with its counters
# disabled and udp_loadgen enables them through the control FIFOs. sys_exit_recvmmsg with
# ret > 0 counts the recvmmsg calls that returned datagrams (the rest found none: EAGAIN).
EVENTS=(raw_syscalls:sys_enter syscalls:sys_enter_recvmmsg syscalls:sys_exit_recvmmsg
    syscalls:sys_enter_sendmmsg syscalls:sys_enter_recvfrom syscalls:sys_enter_sendto
    syscalls:sys_enter_recvmsg syscalls:sys_enter_sendmsg syscalls:sys_enter_epoll_wait
    syscalls:sys_enter_epoll_pwait syscalls:sys_enter_epoll_pwait2 syscalls:sys_enter_epoll_ctl
    syscalls:sys_enter_futex syscalls:sys_enter_read syscalls:sys_enter_write)
count_syscalls() { # server round scenario
    local s=$1 r=$2 sc=$3 lgout=$WORK/sys.out rc=0 lg perf_pid ev args=() kv=""
    alive "$s" || { echo "server=$s round=$r scenario=sys-$sc failed=server-died" >>"$RESULTS"; return 0; }
    for ev in "${EVENTS[@]}"; do
        args+=(-e "$ev")
        [[ $ev == syscalls:sys_exit_recvmmsg ]] && args+=(--filter 'ret > 0')
    done
    rm -f "$WORK/ctl" "$WORK/ack"
    mkfifo "$WORK/ctl" "$WORK/ack"
    # shellcheck disable=SC2046
    "$UDP_LOADGEN" $(scenario_args "$sc") -w "$WARMUP" -d "$DURATION" -P "${PORT[$s]}" -p "${PID[$s]}" -T 60 \
        --perf-ctl "$WORK/ctl" --perf-ack "$WORK/ack" >"$lgout" 2>>"$OUT/loadgen.stderr" &
    lg=$!
    for _ in $(seq 200); do grep -q '^connected' "$lgout" && break; kill -0 $lg 2>/dev/null || break; sleep 0.05; done
    perf stat -D -1 --control "fifo:$WORK/ctl,$WORK/ack" -x, -o "$WORK/perf.out" "${args[@]}" -p "${PID[$s]}" \
        2>/dev/null &
    perf_pid=$!
    wait $lg || rc=$?
    kill -INT $perf_pid 2>/dev/null || true
    wait $perf_pid || true
    cp "$WORK/perf.out" "$OUT/perf-$sc-$s-r$r.csv" 2>/dev/null || true
    if ((rc)) || ! grep -q '^result ' "$lgout"; then
        log "!! $s sys-$sc failed (rc=$rc)"
        echo "server=$s round=$r scenario=sys-$sc failed=rc$rc" >>"$RESULTS"
        return 0
    fi
    # perf -x, lines: count,unit,event,... ; "sc_<name>=count", recvmmsg_ok for the filtered exit
    kv=$(awk -F, '$3 ~ /^(raw_)?syscalls:/ {
            n = $3; sub(/^.*:sys_/, "", n); sub(/^enter_/, "", n)
            if (n == "enter") n = "all"; if (n == "exit_recvmmsg") n = "recvmmsg_ok"
            v = ($1 ~ /^[0-9]+$/) ? $1 : 0
            printf "sc_%s=%s ", n, v }' "$WORK/perf.out")
    record "$s" "$r" "sys-$sc" "$(grep '^result ' "$lgout") $kv"
}

QUIET_BUDGET=${QUIET_BUDGET:-$QUIET_DEFAULT}
wait_quiet() {
    ((QUIET_BUDGET > 0)) || return 0
    local max=$((QUIET_BUDGET < 15 ? QUIET_BUDGET : 15)) out waited
    out=$("$WORK/loadgen" quiet -d "$max")
    waited=$(grep -oE 'waited_s=[0-9]+' <<<"$out" | cut -d= -f2)
    QUIET_BUDGET=$((QUIET_BUDGET - ${waited:-0}))
    grep -q 'busy_cpus=0\.[01]' <<<"$out" || log "machine busy before this step: ${out#result mode=quiet }"
}

start_time=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
n_servers=${#SERVER_LIST[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n_servers; i++)); do order+=("${SERVER_LIST[$(((i + r - 1) % n_servers))]}"); done
    for sc in f1 f100; do
        wait_quiet
        log "round $r/$ROUNDS: $sc ($(scenario_args $sc)) on ${order[*]}"
        for s in "${order[@]}"; do run_udp "$s" "$r" "$sc"; done
    done
    if [[ $SYSCALL_TOOL == perf ]]; then
        log "round $r/$ROUNDS: syscalls under perf stat"
        for sc in f1 f100; do
            for s in "${order[@]}"; do count_syscalls "$s" "$r" "$sc"; done
        done
    fi
done
log "scenarios took $((SECONDS - start_time)) s"

# ---- 5. report ----------------------------------------------------------------------------
{
    echo "# bench/udp_run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), kernel $(uname -r)"
    echo "# tcpechod $DAEMON_REV, release build$(if ((BUILD)); then echo ' (built by this run)'; else echo ' (--no-build: as found in build-release/)'; fi)"
    for s in "${SERVER_LIST[@]}"; do
        if [[ $s == tcpechod* ]]; then
            echo "# $s: $(find "/proc/${PID[$s]}/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) threads; $(grep -E '^(workers|udp_)' "$OUT/server-$s.toml" 2>/dev/null | tr '\n' ' ')"
        fi
    done
    echo "# load average before/after: $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs adds noise)"
    echo "# rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s f1: $(scenario_args f1); f100: $(scenario_args f100); 64-byte datagrams; no pinning; syscall_tool=$SYSCALL_TOOL"
} >"$OUT/header.txt"
python3 "$BENCH/udp_report.py" "$OUT/header.txt" "$RESULTS" | tee "$OUT/report.txt"
log "raw results: $RESULTS"
