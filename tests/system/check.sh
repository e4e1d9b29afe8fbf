#!/bin/bash
# Runs inside the booted container (tcpecho-check.service, see run.sh): checks the installed
# Debian package and tcpechod under a real systemd, then purges the package and checks that
# nothing is left. Every check prints PASS or FAIL with details; the exit status is 1 if any
# check failed. All output also goes to /root/tcpecho-test/check.log, which run.sh prints.
set -u
. /root/tcpecho-test/env        # TCPECHOD, PROBE, CONFIG, PACKAGE, VERSION
exec > >(tee /root/tcpecho-test/check.log) 2>&1

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
show() { systemctl show -P "$2" "$1"; }
svc=tcpechod.service
sock=tcpechod.socket
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }
journal_count() { journalctl -q -u "$svc" --no-pager -o cat | grep -c -- "$1"; }

# Wait up to $1 seconds (steps of 0.2 s) for the command in "$@" to succeed.
wait_for() {
    local limit=$1; shift
    local i
    for ((i = 0; i < limit * 5; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}

write_config() {  # $1: mode of the "echo" TCP listener; $2: extra lines for its table
    cat >"$CONFIG.new" <<CONF
workers = 2
log_level = "info"
drain_timeout = 5

[limits]
udp_rate_limit = 1000
udp_burst = 1000

[[listen]]
name = "echo"
address = "127.0.0.1"
port = 7007
proto = "tcp"
mode = "$1"
$2

[[listen]]
name = "echo"
address = "127.0.0.1"
port = 7007
proto = "udp"

[[listen]]
name = "echo-length"
address = "127.0.0.1"
port = 7008
proto = "tcp"
mode = "length"
CONF
    chmod 0644 "$CONFIG.new" && mv "$CONFIG.new" "$CONFIG"
}

echo "== tcpecho system checks ($(uname -r), $(systemctl --version | head -n1))"
echo "package $PACKAGE $VERSION; daemon $TCPECHOD, probe $PROBE, config $CONFIG"
# (Not `is-system-running --wait`: this unit's own start job keeps the system "starting".)
echo "system state: $(systemctl is-system-running 2>&1); failed units: $(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"

echo "== 0. the package: installed by apt, tcpechod.socket enabled by its postinst"
st=$(dpkg-query -W -f='${Status} ${Version}' "$PACKAGE" 2>&1)
[ "$st" = "install ok installed $VERSION" ] && pass "dpkg: $PACKAGE $st" || fail "dpkg status of $PACKAGE: $st (want install ok installed $VERSION)"
for f in "$TCPECHOD" "$PROBE" "$CONFIG"; do
    dpkg -S "$f" >/dev/null 2>&1 && pass "$f belongs to $(dpkg -S "$f" 2>/dev/null | cut -d: -f1)" || fail "$f is not a file of any package"
done
e=$(systemctl is-enabled "$sock" 2>&1)
[ "$e" = enabled ] && pass "$sock is $e ($(find /etc/systemd/system -name "$sock" -printf '%P -> %l ' 2>/dev/null))" || fail "$sock is '$e' (want enabled)"
e=$(systemctl is-enabled "$svc" 2>&1)
# "indirect": its [Install] has only Also=tcpechod.socket (enabling it enables the socket).
case $e in
    static|indirect|disabled) pass "$svc is $e (not enabled itself: started by the socket)" ;;
    *) fail "$svc is '$e' (want static, indirect or disabled)" ;;
esac
for u in "$sock" "$svc"; do
    path=$(show "$u" FragmentPath)
    case $path in
        /lib/systemd/system/*|/usr/lib/systemd/system/*) pass "$u from $path" ;;
        *) fail "$u loaded from '$path' (want the package's /lib/systemd/system)" ;;
    esac
done

echo "== 1. socket active, service waiting for the first connection"
s=$(systemctl is-active "$sock")
v=$(systemctl is-active "$svc")
if [ "$s" = active ] && [ "$v" = inactive ]; then
    pass "$sock is $s, $svc is $v"
else
    fail "$sock is $s (want active), $svc is $v (want inactive)"
    systemctl status --no-pager "$sock" "$svc" 2>&1 | sed 's/^/    /'
fi

echo "== 2. TCP and UDP echo through port 7 (socket activation)"
if out=$("$PROBE" -q 127.0.0.1:7 -n 200 -s 1K 2>&1); then
    pass "TCP probe -n 200 -s 1K exit 0"
else
    fail "TCP probe exit $?: $out"
fi
v=$(systemctl is-active "$svc")
[ "$v" = active ] && pass "$svc activated ($v, MainPID $(show $svc MainPID))" || fail "$svc is $v after the first connection (want active)"
if out=$("$PROBE" -q --udp 127.0.0.1:7 -n 200 -s 512 2>&1); then
    pass "UDP probe -n 200 -s 512 exit 0"
else
    fail "UDP probe exit $?: $out"
fi
# The sandbox of tcpechod.service is in effect in the container, not silently dropped.
pid=$(show $svc MainPID)
status=$(cat "/proc/$pid/status" 2>/dev/null)
field() { printf '%s\n' "$status" | awk -v k="$1:" '$1 == k { print $2 }'; }
sandbox="Uid=$(field Uid) CapEff=$(field CapEff) CapBnd=$(field CapBnd) NoNewPrivs=$(field NoNewPrivs) Seccomp=$(field Seccomp)"
if [ -n "$status" ] && [ "$(field Uid)" != 0 ] && [ "$(field CapEff)" = 0000000000000000 ] &&
        [ "$(field CapBnd)" = 0000000000000000 ] && [ "$(field NoNewPrivs)" = 1 ] && [ "$(field Seccomp)" = 2 ] &&
        [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/1/ns/net)" ]; then
    pass "sandbox: $sandbox, own network namespace"
else
    fail "sandbox not in effect: $sandbox, netns $(readlink /proc/$pid/ns/net) (PID 1: $(readlink /proc/1/ns/net))"
fi
# "echo-length" has no passed socket: not served (the warning is checked with the journal).
if out=$("$PROBE" -q --timeout 2s 127.0.0.1:7008 -n 1 2>&1); then
    fail "port 7008 (listener echo-length, no passed socket) answered"
else
    pass "port 7008 (listener echo-length without a passed socket) is not served"
fi
if journalctl -q -u "$svc" --no-pager -o cat | grep -q 'not serving name=echo-length'; then
    pass "journal: tcpechod says it does not serve echo-length"
else
    fail "no 'not serving name=echo-length' line in the journal"
fi

echo "== 3. reload: new configuration, same process, open connections keep going"
pid_before=$(show $svc MainPID)
"$PROBE" 127.0.0.1:7 -t 8 -s 4K >/tmp/bg-probe.out 2>&1 &
bg=$!
sleep 1
reloads_before=$(journal_count 'reload complete')
# "echo" TCP becomes line mode with lines of at most 1 KiB: a 4 KiB line then fails, which
# a raw listener would have echoed: that tells the new configuration is in effect.
write_config line 'max_frame = "1KiB"'
if out=$(systemctl reload "$svc" 2>&1); then pass "systemctl reload exit 0"; else fail "systemctl reload failed: $out"; fi
if wait_for 10 test "$(journal_count 'reload complete')" -gt "$reloads_before"; then
    pass "journal: reload complete"
else
    fail "no new 'reload complete' line within 10 s"
fi
pid_after=$(show $svc MainPID)
[ "$pid_before" = "$pid_after" ] && pass "MainPID unchanged ($pid_after)" || fail "MainPID changed: $pid_before -> $pid_after"
if out=$("$PROBE" -q --mode line 127.0.0.1:7 -n 100 -s 1-1000 2>&1); then
    pass "line probe (1..1000 bytes per line) after reload exit 0"
else
    fail "line probe after reload exit $?: $out"
fi
if out=$("$PROBE" -q --mode line --timeout 3s 127.0.0.1:7 -n 1 -s 4K 2>&1); then
    fail "a 4 KiB line was echoed: max_frame = 1KiB of the reloaded configuration is not in effect"
else
    pass "a 4 KiB line is refused (max_frame = 1KiB in effect)"
fi
if wait "$bg"; then
    pass "raw probe started before the reload (-t 8 -s 4K) exit 0"
else
    fail "raw probe started before the reload exit $?: $(cat /tmp/bg-probe.out)"
fi
# A broken file: ExecReload= runs --check-config first, so the reload fails and the daemon
# keeps its configuration (and is not signalled).
cp "$CONFIG" /tmp/good.toml
printf 'workers = "many"\n' >"$CONFIG"
if out=$(systemctl reload "$svc" 2>&1); then
    fail "systemctl reload with a broken configuration succeeded"
else
    pass "systemctl reload with a broken configuration fails"
fi
v=$(systemctl is-active "$svc")
[ "$v" = active ] && [ "$(show $svc MainPID)" = "$pid_before" ] && pass "still $v, same MainPID" || fail "after the failed reload: $v, MainPID $(show $svc MainPID) (was $pid_before)"
cp /tmp/good.toml "$CONFIG"
if out=$("$PROBE" -q --mode line 127.0.0.1:7 -n 20 -s 100 2>&1); then pass "still echoing lines"; else fail "line probe after the failed reload exit $?: $out"; fi

echo "== 4. watchdog: a stopped daemon is killed and restarted; the socket keeps accepting"
pid_before=$(show $svc MainPID)
restarts_before=$(show $svc NRestarts)
echo "WatchdogUSec=$(show $svc WatchdogUSec) MainPID=$pid_before NRestarts=$restarts_before"
t_stop=$(date +%s.%N)
kill -STOP "$pid_before"
# Connects at once (the listening socket is systemd's), waits for its echoes until the
# restarted daemon serves the queued connection.
"$PROBE" -q --mode line --timeout 30s 127.0.0.1:7 -n 50 -s 100 >/tmp/wd-probe.out 2>&1 &
bg=$!
restarted() {
    local pid n
    pid=$(show $svc MainPID); n=$(show $svc NRestarts)
    [ "$n" -gt "$restarts_before" ] && [ "$pid" != 0 ] && [ "$pid" != "$pid_before" ] &&
        [ "$(systemctl is-active $svc)" = active ]
}
if wait_for 20 restarted; then
    took=$(awk -v a="$t_stop" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    pass "restarted after ${took} s: NRestarts $restarts_before -> $(show $svc NRestarts), MainPID $pid_before -> $(show $svc MainPID)"
    awk -v t="$took" 'BEGIN { exit !(t <= 15) }' && pass "within 15 s" || fail "took ${took} s (want <= 15)"
else
    fail "not restarted within 20 s: NRestarts $(show $svc NRestarts), MainPID $(show $svc MainPID), $(systemctl is-active $svc)"
    kill -CONT "$pid_before" 2>/dev/null
fi
if journalctl -q -u "$svc" --no-pager -o cat | grep -qi 'watchdog timeout'; then
    pass "journal: $(journalctl -q -u "$svc" --no-pager -o cat | grep -i 'watchdog timeout' | tail -n1)"
else
    fail "no 'Watchdog timeout' in the journal of $svc"
fi
echo "Result=$(show $svc Result) (of the current run after the restart)"
if wait "$bg"; then
    pass "probe started while the daemon was stopped exit 0"
else
    fail "probe started while the daemon was stopped exit $?: $(cat /tmp/wd-probe.out)"
fi

echo "== 5. clean stop"
if out=$(systemctl stop "$svc" 2>&1); then pass "systemctl stop exit 0"; else fail "systemctl stop: $out"; fi
st=$(show $svc ExecMainStatus); code=$(show $svc ExecMainCode); res=$(show $svc Result)
if [ "$st" = 0 ] && [ "$res" = success ]; then
    pass "ExecMainStatus=$st ExecMainCode=$code Result=$res"
else
    fail "ExecMainStatus=$st ExecMainCode=$code Result=$res (want 0, success)"
fi
s=$(systemctl is-active "$sock")
[ "$s" = active ] && pass "$sock still $s" || fail "$sock is $s after stopping the service"
if out=$("$PROBE" -q --mode line 127.0.0.1:7 -n 10 -s 100 2>&1) && [ "$(systemctl is-active $svc)" = active ]; then
    pass "the next connection activates it again"
else
    fail "re-activation after stop: probe $out, service $(systemctl is-active $svc)"
fi

echo "== 6. journal: priorities from tcpechod's <N> prefixes"
json=$(journalctl -q -u "$svc" --no-pager -o json)
daemon_lines=$(printf '%s\n' "$json" | grep '"SYSLOG_IDENTIFIER":"tcpechod"')
echo "tcpechod lines in the journal by PRIORITY: $(printf '%s\n' "$daemon_lines" | grep -o '"PRIORITY":"[0-9]"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
if printf '%s\n' "$daemon_lines" | grep '"PRIORITY":"5"' | grep -q '"MESSAGE":"ready: '; then
    pass "PRIORITY=5 (notice): $(printf '%s\n' "$daemon_lines" | grep '"PRIORITY":"5"' | grep -o '"MESSAGE":"ready: [^"]*"' | head -n1)"
else
    fail "no PRIORITY=5 'ready: ...' line from tcpechod"
fi
line=$(printf '%s\n' "$daemon_lines" | grep '"MESSAGE":"not serving name=echo-length' | head -n1)
if printf '%s\n' "$line" | grep -q '"PRIORITY":"[45]"'; then
    pass "the 'not serving name=echo-length' line has $(printf '%s\n' "$line" | grep -o '"PRIORITY":"[0-9]"')"
else
    fail "no 'not serving name=echo-length' line with PRIORITY 4 or 5 from tcpechod"
fi
# From the --check-config run of the failed reload (check 3): an error.
if printf '%s\n' "$daemon_lines" | grep '"PRIORITY":"3"' | grep -q '"MESSAGE":"configuration error'; then
    pass "PRIORITY=3 (err): the 'configuration error' line of the failed reload"
else
    fail "no PRIORITY=3 'configuration error' line from tcpechod --check-config"
fi
if printf '%s\n' "$daemon_lines" | grep -q '"MESSAGE":"<[0-7]>'; then
    fail "messages still carry their <N> prefix: $(printf '%s\n' "$daemon_lines" | grep -o '"MESSAGE":"<[0-7]>[^"]*"' | head -n1)"
else
    pass "no message keeps its <N> prefix"
fi

echo "== 7. a broken configuration at start: status 78, no restart loop (RestartPreventExitStatus=78)"
echo "(the console's \"Failed to start tcpechod.service\" here is expected)"
cp "$CONFIG" /tmp/good.toml
printf 'workers = "many"\n' >"$CONFIG"
restarts_before=$(show $svc NRestarts)
if out=$(systemctl restart "$svc" 2>&1); then fail "systemctl restart with a broken configuration succeeded"; else pass "systemctl restart with a broken configuration fails"; fi
sleep 2
st=$(show $svc ExecMainStatus); res=$(show $svc Result); n=$(show $svc NRestarts); s=$(systemctl is-active "$sock")
if [ "$st" = 78 ] && [ "$res" = exit-code ] && [ "$n" = "$restarts_before" ] && [ "$s" = active ]; then
    pass "ExecMainStatus=$st Result=$res, NRestarts still $n, $sock still $s"
else
    fail "ExecMainStatus=$st Result=$res NRestarts $restarts_before -> $n, $sock $s (want 78, exit-code, no restart, active)"
fi
cp /tmp/good.toml "$CONFIG"
if out=$("$PROBE" -q --mode line 127.0.0.1:7 -n 10 -s 100 2>&1) && [ "$(systemctl is-active $svc)" = active ]; then
    pass "configuration fixed: the next connection starts it again"
else
    fail "after fixing the configuration: probe $out, service $(systemctl is-active $svc)"
fi

echo "== 7b. tcpechod-metrics.socket: shipped disabled; with a [metrics] table, GET /metrics from the service"
msock=tcpechod-metrics.socket
e=$(systemctl is-enabled "$msock" 2>&1)
[ "$e" = disabled ] && pass "$msock is-enabled: $e (opt-in)" || fail "$msock is-enabled: $e (want disabled)"
cp "$CONFIG" /tmp/config-before-metrics
printf '\n[metrics]\nport = 9107\n' >>"$CONFIG"
# systemd refuses to start a socket unit whose service is already running: stop it first.
if out=$(systemctl stop "$svc" 2>&1) && out=$(systemctl enable --now "$msock" 2>&1) &&
        out=$(systemctl start "$svc" 2>&1); then
    pass "systemctl stop $svc; enable --now $msock; start $svc"
else
    fail "enabling $msock: $out; $(systemctl status --no-pager "$msock" 2>&1 | tail -n 5 | tr '\n' ' ')"
fi
# (Echo is in line mode since check 5's reload.)
"$PROBE" -q --mode line 127.0.0.1:7 -n 10 -s 100 >/dev/null 2>&1 || fail "line probe with the metrics socket enabled exit $?"
scrape() { timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9107 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null; }
if wait_for 10 bash -c "$(declare -f scrape); scrape | grep -q '^tcpechod_bytes_sent_total{worker=\"0\"}'"; then
    m=$(scrape)
    sent=$(printf '%s\n' "$m" | awk '/^tcpechod_bytes_sent_total/ { s += $2 } END { print s + 0 }')
    printf '%s\n' "$m" | head -n1 | grep -q '^HTTP/1.1 200 ' && [ "$sent" -ge 1000 ] &&
        pass "GET /metrics through the passed socket: 200, bytes_sent_total $sent (the probe's 1,000 bytes counted)" ||
        fail "GET /metrics: $(printf '%s\n' "$m" | head -n 3 | tr '\r\n' '  '), bytes_sent $sent"
else
    fail "no metrics at 127.0.0.1:9107 within 10 s; journal: $(journalctl -q -u "$svc" -n 5 --no-pager | tr '\n' ' ')"
fi
journalctl -q -u "$svc" --no-pager | grep -q 'metrics listening name=metrics address=127.0.0.1:9107 path=/metrics from=systemd' &&
    pass "log: metrics listening ... from=systemd" || fail "no 'metrics listening ... from=systemd' line in the journal"
systemctl disable --now "$msock" >/dev/null 2>&1
cp /tmp/config-before-metrics "$CONFIG"
systemctl restart "$svc" >/dev/null 2>&1
[ "$(systemctl is-active "$msock")" = inactive ] && pass "$msock disabled and stopped again" || fail "$msock: $(systemctl is-active "$msock")"

echo "== 8. systemd-analyze verify of the package's units, inside the booted system"
# With the Documentation= man: links: the package ships the man pages (check 9 reads them).
man_arg=--man=yes
if out=$(systemd-analyze verify "$man_arg" "$sock" "$svc" tcpechod-metrics.socket 2>&1) && [ -z "$out" ]; then
    pass "systemd-analyze verify $man_arg $sock $svc tcpechod-metrics.socket: clean"
else
    fail "systemd-analyze verify $man_arg: $out"
fi

echo "== 9. man pages of the package render with man(1)"
for page in tcpechod tcpechod.toml tcpecho-probe; do
    if out=$(MANPAGER=cat MANWIDTH=80 timeout 30 man -P cat "$page" 2>&1) && printf '%s\n' "$out" | grep -q '^SYNOPSIS' &&
            printf '%s\n' "$out" | grep -q "^ *$page "; then
        pass "man $page: $(man -w "$page" 2>/dev/null), $(printf '%s\n' "$out" | wc -l) lines, NAME: $(printf '%s\n' "$out" | grep -A1 '^NAME' | tail -n1 | sed 's/^ *//')"
    else
        fail "man $page: $(printf '%s\n' "$out" | head -n 5)"
    fi
done

echo "== journal of $svc"
journalctl -q -u "$sock" -u "$svc" --no-pager -o short-monotonic | tail -n 60 | sed 's/^/    /'

echo "== 10. apt-get purge: units stopped and removed, nothing left behind"
# Port 7 bound (TCP listening, state 0A, or UDP) in this network namespace, from /proc/net.
port7() { awk 'FNR > 1 && $2 ~ /:0007$/ && (FILENAME ~ /udp/ || $4 == "0A") { print FILENAME }' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | sort -u | tr '\n' ' '; }
"$PROBE" -q 127.0.0.1:7 -n 5 -s 100 >/dev/null 2>&1
echo "before: $sock $(systemctl is-active $sock), $svc $(systemctl is-active $svc), port 7 bound in: $(port7)"
dpkg -L "$PACKAGE" >/tmp/package-files 2>&1
# The test's own drop-in (run.sh) is not the package's: removed first so that what is left in
# /etc/systemd afterwards is the package's doing.
rm -rf /etc/systemd/system/tcpechod.service.d
systemctl daemon-reload
if out=$(DEBIAN_FRONTEND=noninteractive timeout 120 apt-get purge -y "$PACKAGE" 2>&1); then
    pass "apt-get purge -y $PACKAGE exit 0"
else
    fail "apt-get purge -y $PACKAGE exit $?"
fi
printf '%s\n' "$out" | sed 's/^/    /'
if printf '%s\n' "$out" | grep -qiE 'warning|not empty|error'; then
    fail "apt-get/dpkg printed warnings or errors during the purge (above)"
fi
for u in "$sock" "$svc"; do
    a=$(systemctl is-active "$u"); l=$(show "$u" LoadState)
    [ "$a" != active ] && [ "$l" = not-found ] && pass "$u: $a, LoadState=$l" || fail "$u: $a, LoadState=$l (want inactive, not-found)"
    if systemctl cat "$u" >/dev/null 2>&1; then fail "systemctl cat $u still shows a unit"; else pass "systemctl cat $u fails (no unit file)"; fi
done
left=$(ls -d /lib/systemd/system/tcpechod.* /usr/lib/systemd/system/tcpechod.* 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] && pass "no tcpechod unit files in /lib/systemd/system" || fail "unit files left: $left"
[ ! -e /etc/tcpechod ] && pass "/etc/tcpechod removed" || fail "/etc/tcpechod still there: $(find /etc/tcpechod | tr '\n' ' ')"
left=$(find /etc/systemd /run/systemd/system /var/lib/systemd -name 'tcpechod*' 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] && pass "no tcpechod* in /etc/systemd, /run/systemd/system, /var/lib/systemd (enablement symlinks, deb-systemd-helper state)" || fail "left: $left"
if timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7' 2>/dev/null; then
    fail "TCP 127.0.0.1:7 still accepts connections"
else
    pass "TCP 127.0.0.1:7 refuses connections"
fi
b=$(port7)
[ -z "$b" ] && pass "port 7 bound nowhere (TCP or UDP, /proc/net)" || fail "port 7 still bound in: $b"
st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PACKAGE" 2>/dev/null)
case $st in
    ''|?n*) pass "dpkg: $PACKAGE not installed (${st:-no record}; dpkg -l: $(dpkg -l "$PACKAGE" 2>&1 | tail -n1 | tr -s ' '))" ;;
    *) fail "dpkg status of $PACKAGE after purge: '$st'" ;;
esac
# Everything the package had, and anything named *tcpecho* on the file system: what is left.
# A directory of the package that is still there is only a leftover when it is empty (dpkg
# keeps directories that other packages' files are in, and /lib is the merged-/usr symlink).
left=""
while IFS= read -r f; do
    [ "$f" = /. ] && continue
    [ -e "$f" ] || [ -L "$f" ] || continue
    if [ -d "$f" ]; then
        [ -z "$(ls -A "$f" 2>/dev/null)" ] && left="$left $f/"
    else
        left="$left $f"
    fi
done </tmp/package-files
[ -z "$left" ] && pass "none of the package's $(wc -l </tmp/package-files) paths is left (non-empty shared directories aside)" || fail "paths of the package left:$left"
# Not the package's: the test's own unit (run.sh), its files, and man-db's cache of formatted
# pages (/var/cache/man/catN, written by `man` in check 9; dpkg knows nothing of them, as for
# every package): listed, not a failure.
left=""; cat_pages=""
while IFS= read -r f; do
    case $f in
        /etc/systemd/system/tcpecho-check.service|/etc/systemd/system/multi-user.target.wants/tcpecho-check.service) ;;
        /var/cache/man/*) cat_pages="$cat_pages $f" ;;
        *) left="$left $f" ;;
    esac
done < <(find / -xdev \( -path /proc -o -path /sys -o -path /root/tcpecho-test -o -path /var/log/journal \) -prune -o -iname '*tcpecho*' -print 2>/dev/null)
[ -z "$left" ] && pass "no file named *tcpecho* left (besides the test's own)" || fail "files named *tcpecho* left:$left"
[ -n "$cat_pages" ] && echo "note: man-db's cache of formatted pages keeps (not dpkg's, created by man in check 9):$cat_pages"

echo "== $failures check(s) failed ($(elapsed))"
[ "$failures" -eq 0 ]
