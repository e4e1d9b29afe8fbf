#!/usr/bin/env bash
# bench/run.sh — tcpechod against its peers, every scenario against every server in one run.
#
# Builds a release tcpechod (build-release/), compiles the peers and the load client into a
# scratch directory, starts every server on 127.0.0.1, runs the scenarios and prints one table
# with the numbers side by side and the targets of docs/performance.md checked against the
# peers of this same run.
#
# Scenarios (see bench/README.md and docs/performance.md):
#   idle   10,000 idle connections: user-space memory (anonymous) per connection
#   bulk   1 GiB full-duplex raw echo on one connection: MiB/s, server CPU s per GiB
#   pp1    64-byte ping-pong, 1 connection: msgs/s, p50/p99 µs, server CPU µs per message
#   pp100  the same with 100 connections (3 fresh 2 s sessions per round)
#   sys50  the same with 50 connections under `perf stat -e raw_syscalls:sys_enter -p PID`:
#          syscalls per echoed message, and epoll_ctl calls in steady state
#   sys1   the same with 1 connection (first round only)
# Each scenario runs on all servers back to back, and report.py judges the targets on
# per-window ratios: the machine has slow and fast spells that hit every server alike.
#
# Servers: tcpechod (workers=1), blocking (thread per connection, 1 MiB buffer), epoll (minimal ET epoll, one thread),
# asyncio (python3), socat (fork + EXEC:cat). Optional: tcpechod-w2 (workers=2), and
# tcpechod-ref: the tcpechod binary TCPECHOD_REF names (built from another commit), run like
# tcpechod, so a change to the daemon is measured against the code before it in one run; the
# table then has a ÷tcpechod-ref column.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--duration S] [--bytes N] [--idle-conns N]
#                     [--servers LIST] [--no-build] [--no-pin] [--out DIR]
# Ping-pong scenarios run with the server pinned to CPU 0 and the client to CPU 1, so that
# placement is the same for every server (--no-pin: let the scheduler place them; better on a
# busy machine, where a pinned server cannot escape a CPU-bound neighbour). bulk and idle
# are never pinned.
# Environment: QUIET_BUDGET=S caps the total time spent waiting for a quiet machine
# (default 120 s, 30 s with --quick; 0 = do not wait).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh" # write_tcpechod_config

ROUNDS=3
BULK_REPS=3          # bulk transfers per server per round (each ~1 s)
PP100_SESSIONS=3     # 100-connection ping-pong sessions per server per round ...
PP100_SECS=2         # ... of this many seconds each (after 0.5 s warm-up)
DURATION=4           # seconds measured per ping-pong scenario (after 1 s warm-up)
BYTES=$((1 << 30))   # bulk scenario
IDLE_CONNS=10000
SERVERS="tcpechod,blocking,epoll,asyncio,socat"
BUILD=1
PIN=1
OUT=""

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while (($#)); do
    case "$1" in
    --quick) ROUNDS=1 BULK_REPS=1 PP100_SESSIONS=2 DURATION=2 BYTES=$((256 << 20)) IDLE_CONNS=2000 QUIET_DEFAULT=30 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --bytes) BYTES=$2; shift ;;
    --idle-conns) IDLE_CONNS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --out) OUT=$2; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ && $DURATION =~ ^[1-9][0-9]?$ && $BYTES =~ ^[0-9]+$ && $IDLE_CONNS =~ ^[0-9]+$ ]] ||
    { echo "run.sh: bad numeric option" >&2; exit 2; }

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---- 1. tools -----------------------------------------------------------------------------
apt_install() {
    local missing=()
    command -v perf >/dev/null || missing+=(linux-perf)
    command -v socat >/dev/null || missing+=(socat)
    command -v python3 >/dev/null || missing+=(python3)
    command -v gcc >/dev/null || missing+=(gcc)
    command -v g++ >/dev/null || missing+=(g++)
    command -v meson >/dev/null || missing+=(meson)
    command -v ninja >/dev/null || missing+=(ninja-build)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    [[ -e /usr/include/ev.h ]] || missing+=(libev-dev)
    [[ -e /usr/include/toml++/toml.h ]] || missing+=(libtomlplusplus-dev)
    [[ -e /usr/include/systemd/sd-daemon.h ]] || missing+=(libsystemd-dev)
    ((${#missing[@]})) || return 0
    log "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2 || {
        apt-get -o DPkg::Lock::Timeout=600 update >&2
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2
    }
}
apt_install
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)

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
# What was built (taken now: daemon/ may change while the scenarios run).
DAEMON_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- daemon 2>/dev/null || echo ' + uncommitted changes in daemon/')"
[[ -x $TCPECHOD ]] || { echo "run.sh: $TCPECHOD missing (drop --no-build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tcpecho-bench.XXXXXX)
[[ -n $OUT ]] || OUT="$BENCH/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
log "scratch $WORK, results in $OUT"
CFLAGS=(-O2 -g -Wall -Wextra)
gcc "${CFLAGS[@]}" -pthread -o "$WORK/loadgen" "$BENCH/loadgen.c"
gcc "${CFLAGS[@]}" -pthread -o "$WORK/blocking_echo" "$BENCH/peers/blocking_echo.c"
gcc "${CFLAGS[@]}" -o "$WORK/epoll_echo" "$BENCH/peers/epoll_echo.c"
LOADGEN=$WORK/loadgen

# ---- 3. limits and perf -----------------------------------------------------------------
want_fds=$((IDLE_CONNS + 1000))
if (($(ulimit -n) < want_fds)); then ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; fi
if (($(ulimit -n) < IDLE_CONNS + 100)); then
    IDLE_CONNS=$(($(ulimit -n) - 100))
    log "fd limit $(ulimit -n): idle scenario reduced to $IDLE_CONNS connections"
fi

SYSCALL_TOOL=perf
if ! perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_ctl true >/dev/null 2>"$WORK/perfcheck"; then
    SYSCALL_TOOL=strace
    log "perf tracepoints unavailable ($(head -c 200 "$WORK/perfcheck")): falling back to strace -c," \
        "which slows the server and flatters batching — syscall numbers are DISTORTED"
    command -v strace >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends strace >&2
fi

# ---- 4. servers -------------------------------------------------------------------------
declare -A PID PORT
STARTED=()

tree_pids() { # the PID and all its descendants, comma-separated
    local root=$1
    ps -e -o pid=,ppid= | awk -v r="$root" '
        { pp[$1] = $2; all[NR] = $1 }
        END { keep[r] = 1; out = r
              for (changed = 1; changed; ) { changed = 0
                  for (i in all) { p = all[i]; if (!(p in keep) && (pp[p] in keep)) { keep[p] = 1; out = out "," p; changed = 1 } } }
              print out }'
}

cleanup() {
    local name pids p
    for name in "${STARTED[@]}"; do
        pids=$(tree_pids "${PID[$name]}" 2>/dev/null || echo "${PID[$name]}")
        for p in ${pids//,/ }; do kill "$p" 2>/dev/null || true; done
    done
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
    tcpechod | tcpechod-w2 | tcpechod-ref)
        local workers=1 bin=$TCPECHOD
        [[ $name == tcpechod-w2 ]] && workers=2
        if [[ $name == tcpechod-ref ]]; then
            bin=${TCPECHOD_REF:-}
            [[ -x $bin ]] || { echo "run.sh: tcpechod-ref needs TCPECHOD_REF=/path/to/tcpechod" >&2; exit 2; }
        fi
        write_tcpechod_config "$WORK/$name.toml" "$workers"
        "$bin" --config "$WORK/$name.toml" >"$logf" 2>&1 &
        ;;
    blocking) "$WORK/blocking_echo" 0 >"$logf" 2>&1 & ;;
    epoll) "$WORK/epoll_echo" 0 >"$logf" 2>&1 & ;;
    asyncio) "$PYTHON" "$BENCH/peers/asyncio_echo.py" 0 >"$logf" 2>&1 & ;;
    socat)
        # EXEC:cat talks to cat over a socketpair; `nodelay` as the other servers set
        # TCP_NODELAY; -t 5: after the client's EOF keep echoing for up to 5 s (the default
        # 0.5 s could cut a long tail of a bulk echo short).
        socat -d -d -t 5 TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay EXEC:cat >"$logf" 2>&1 &
        ;;
    *) echo "run.sh: unknown server $name" >&2; exit 2 ;;
    esac
    pid=$!
    PID[$name]=$pid
    STARTED+=("$name")
    for _ in $(seq 100); do
        port=$(grep -m1 -oE 'port=[0-9]+|address=127\.0\.0\.1:[0-9]+|AF=2 127\.0\.0\.1:[0-9]+' "$logf" 2>/dev/null |
            grep -oE '[0-9]+$' || true)
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $port ]] || { echo "run.sh: $name did not start:" >&2; cat "$logf" >&2; exit 1; }
    PORT[$name]=$port
    log "started $name pid=$pid port=$port"
}

IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
for s in "${SERVER_LIST[@]}"; do start_server "$s"; done

# ---- 5. scenarios -------------------------------------------------------------------------
record() { # server round scenario result-line; $TAG (e.g. rep=2) is added when set
    local kv=${4#result }
    echo "server=$1 round=$2 scenario=$3 ${TAG:-rep=0} $kv" >>"$RESULTS"
}

alive() {
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    log "!! $1 (pid ${PID[$1]}) is gone; its log:"
    tail -5 "$WORK/$1.log" >&2
    return 1
}

run_loadgen() { # server round scenario args...
    local s=$1 r=$2 sc=$3 out rc=0
    shift 3
    alive "$s" || { echo "server=$s round=$r scenario=$sc failed=server-died" >>"$RESULTS"; return 0; }
    out=$("${CLIENT[@]}" "$LOADGEN" "$@" -P "${PORT[$s]}" -p "${PID[$s]}" 2>"$WORK/lg.err") || rc=$?
    if ((rc)) || ! grep -q '^result ' <<<"$out"; then
        log "!! $s $sc failed (rc=$rc): $(tr '\n' ' ' <"$WORK/lg.err" | head -c 300)"
        echo "server=$s round=$r scenario=$sc failed=loadgen-rc$rc" >>"$RESULTS"
    else
        record "$s" "$r" "$sc" "$(grep '^result ' <<<"$out")"
    fi
    cat "$WORK/lg.err" >>"$OUT/loadgen.stderr"
}

count_syscalls() { # server round conns seconds: ping-pong under perf stat (or strace -c)
    local s=$1 r=$2 conns=$3 DURATION=$4 sc=sys$3 pids lgout=$WORK/sys.out rc=0 total ctl lg tool_pid
    alive "$s" || { echo "server=$s round=$r scenario=$sc failed=server-died" >>"$RESULTS"; return 0; }
    if [[ $SYSCALL_TOOL == perf ]]; then
        # perf starts with its counters disabled; loadgen enables them for exactly its own
        # measurement window through the control FIFOs, so syscalls ÷ messages is exact.
        rm -f "$WORK/ctl" "$WORK/ack"
        mkfifo "$WORK/ctl" "$WORK/ack"
        "${CLIENT[@]}" "$LOADGEN" pingpong -c "$conns" -w 1 -d "$DURATION" -P "${PORT[$s]}" -p "${PID[$s]}" -T 60 \
            --perf-ctl "$WORK/ctl" --perf-ack "$WORK/ack" >"$lgout" 2>>"$OUT/loadgen.stderr" &
        lg=$!
        for _ in $(seq 200); do grep -q '^connected' "$lgout" && break; kill -0 $lg 2>/dev/null || break; sleep 0.05; done
        pids=$(tree_pids "${PID[$s]}") # socat: the per-connection children exist now
        perf stat -D -1 --control "fifo:$WORK/ctl,$WORK/ack" -x, -o "$WORK/perf.out" \
            -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_ctl -p "$pids" 2>/dev/null &
        tool_pid=$!
        wait $lg || rc=$?
        kill -INT $tool_pid 2>/dev/null || true
        wait $tool_pid || true
        total=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$WORK/perf.out")
        ctl=$(awk -F, '$3 == "syscalls:sys_enter_epoll_ctl" {print $1}' "$WORK/perf.out")
        cp "$WORK/perf.out" "$OUT/perf-$sc-$s-r$r.csv"
    else
        # strace stops the server at every syscall: it slows it down and lets more messages
        # pile up per epoll_wait, so it flatters batching. Window: rate × strace's duration.
        local window=$((DURATION > 2 ? DURATION - 1 : DURATION)) args=() p
        "${CLIENT[@]}" "$LOADGEN" pingpong -c "$conns" -w 1 -d $((window + 1)) -P "${PORT[$s]}" -p "${PID[$s]}" -T 60 \
            >"$lgout" 2>>"$OUT/loadgen.stderr" &
        lg=$!
        for _ in $(seq 200); do grep -q '^ready' "$lgout" && break; kill -0 $lg 2>/dev/null || break; sleep 0.05; done
        pids=$(tree_pids "${PID[$s]}")
        for p in ${pids//,/ }; do args+=(-p "$p"); done
        timeout -s INT "$window" strace -c -f "${args[@]}" -o "$WORK/strace.out" || true
        wait $lg || rc=$?
        total=$(awk '$NF == "total" {print $3}' "$WORK/strace.out")
        ctl=$(awk '$NF == "epoll_ctl" {print $4}' "$WORK/strace.out")
        cp "$WORK/strace.out" "$OUT/strace-$sc-$s-r$r.txt"
        total="$total strace_window_s=$window"
    fi
    if ((rc)) || ! grep -q '^result ' "$lgout" || [[ -z $total ]]; then
        log "!! $s $sc failed (rc=$rc)"
        echo "server=$s round=$r scenario=$sc failed=rc$rc" >>"$RESULTS"
        return 0
    fi
    record "$s" "$r" "$sc" "$(grep '^result ' "$lgout") syscalls=$total epoll_ctl=${ctl:-0} tool=$SYSCALL_TOOL"
}

# Placement: ping-pong with the server on CPU 0 and the client on CPU 1 (all threads, and
# socat's future children, inherit the server's mask); bulk and idle float.
ALL_CPUS="0-$(($(nproc) - 1))"
CLIENT=()
place() { # server pinned|float
    local s=$1 p cpus=$ALL_CPUS
    CLIENT=()
    if [[ $2 == pinned ]] && ((PIN)) && (($(nproc) >= 2)); then cpus=0 CLIENT=(taskset -c 1); fi
    for p in $(tree_pids "${PID[$s]}" | tr , ' '); do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 || true; done
}

# Another job on these 2 cores skews everything: before each server's turn wait (bounded) until
# the machine is quiet; what other processes still took during each window is reported
# (other_cpu_s) and summarised by report.py.
QUIET_BUDGET=${QUIET_BUDGET:-${QUIET_DEFAULT:-120}} # seconds of waiting allowed over the whole run
wait_quiet() {
    ((QUIET_BUDGET > 0)) || return 0
    local max=$((QUIET_BUDGET < 15 ? QUIET_BUDGET : 15)) out waited
    out=$("$LOADGEN" quiet -d "$max")
    waited=$(grep -oE 'waited_s=[0-9]+' <<<"$out" | cut -d= -f2)
    QUIET_BUDGET=$((QUIET_BUDGET - ${waited:-0}))
    grep -q 'busy_cpus=0\.[01]' <<<"$out" || log "machine busy before this step: ${out#result mode=quiet }"
}

start_time=$SECONDS
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Idle memory first, on fresh processes (a pool that grew in an earlier scenario would hide
# per-connection growth). socat forks two processes per connection: not measured.
for s in "${SERVER_LIST[@]}"; do
    [[ $s == socat ]] && { echo "server=socat round=1 scenario=idle skipped=process-per-connection" >>"$RESULTS"; continue; }
    wait_quiet
    log "idle: $s, $IDLE_CONNS connections"
    run_loadgen "$s" 1 idle idle -n "$IDLE_CONNS" -S 8 -T 120
done

# This machine drifts between slow and fast phases lasting minutes, for every server alike
# (host-level; see docs/performance.md). So each scenario runs on all servers back to back —
# one bulk transfer on each server, then the next, and so on — and report.py compares
# tcpechod with a peer window by window (same round, same repetition) before taking medians.
# Each round starts with a different server.
n_servers=${#SERVER_LIST[@]}
rotation() { # round -> the servers, rotated
    local r=$1 i
    for ((i = 0; i < n_servers; i++)); do echo "${SERVER_LIST[$(((i + r - 1) % n_servers))]}"; done
}
for ((r = 1; r <= ROUNDS; r++)); do
    mapfile -t order < <(rotation "$r")
    wait_quiet
    log "round $r/$ROUNDS: bulk x$BULK_REPS (socat x1) on ${order[*]}"
    for ((k = 0; k < BULK_REPS; k++)); do
        for s in "${order[@]}"; do
            # socat does ~150 MiB/s: one transfer per round is enough and takes long
            if [[ $s == socat ]] && ((k > 0)); then continue; fi
            place "$s" float
            TAG="rep=$k" run_loadgen "$s" "$r" bulk bulk -n "$BYTES" -T 120
        done
    done
    wait_quiet
    log "round $r/$ROUNDS: ping-pong, 1 connection"
    for s in "${order[@]}"; do
        place "$s" pinned
        run_loadgen "$s" "$r" pp1 pingpong -c 1 -w 1 -d "$DURATION" -T 60
    done
    wait_quiet
    log "round $r/$ROUNDS: ping-pong, 100 connections x$PP100_SESSIONS sessions"
    for ((k = 0; k < PP100_SESSIONS; k++)); do
        for s in "${order[@]}"; do
            place "$s" pinned
            TAG="rep=$k" run_loadgen "$s" "$r" pp100 pingpong -c 100 -w 0.5 -d "$PP100_SECS" -T 60
        done
    done
    wait_quiet
    log "round $r/$ROUNDS: syscalls per message at 50 connections$(if ((r == 1)); then echo ' and at 1'; fi)"
    for s in "${order[@]}"; do
        place "$s" pinned
        count_syscalls "$s" "$r" 50 "$DURATION"
        # one connection: the syscalls of one wake-up carrying one message
        if ((r == 1)); then count_syscalls "$s" "$r" 1 2; fi
        place "$s" float
    done
done
log "scenarios took $((SECONDS - start_time)) s"

# ---- 6. report ----------------------------------------------------------------------------
{
    echo "# bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), kernel $(uname -r)"
    echo "# tcpechod $DAEMON_REV, release build$(if ((BUILD)); then echo ' (built by this run)'; else echo ' (--no-build: as found in build-release/)'; fi)"
    if [[ ,$SERVERS, == *,tcpechod-ref,* ]]; then echo "# tcpechod-ref: $TCPECHOD_REF"; fi
    echo "# load average before/after the scenarios: $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) (other work on these 2 cores adds noise)"
    echo "# ping-pong placement: $(if ((PIN)); then echo 'server on CPU 0, client on CPU 1'; else echo 'scheduler (--no-pin)'; fi); bulk and idle: scheduler"
    echo "# rounds=$ROUNDS duration=${DURATION}s bulk_bytes=$BYTES idle_conns=$IDLE_CONNS syscall_tool=$SYSCALL_TOOL"
} >"$OUT/header.txt"
"$PYTHON" "$BENCH/report.py" "$OUT/header.txt" "$RESULTS" | tee "$OUT/report.txt"
log "raw results: $RESULTS"
