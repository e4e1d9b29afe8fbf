#!/usr/bin/env bash
# System test: boots real systemd in a container (systemd-nspawn) with this build's tcpechod,
# tcpecho-probe and systemd units installed, and runs check.sh inside it (meson suite 'system').
#
#   1. A minimal Debian tree (debootstrap --variant=minbase) of this machine's release, from
#      the mirror in this machine's apt configuration, cached outside the repo in
#      $TCPECHO_SYSTEM_CACHE (default /var/cache/tcpecho-tests)/<codename>-<hash>, the hash
#      covering mirror, release, package list and the preparation below. Built in a temporary
#      directory and renamed into place under a lock, so an interrupted run leaves no broken
#      cache. First run ~4 min here (debootstrap 221 s, network), later runs 15-25 s.
#   2. A per-run copy (cp --reflink=auto) in $TMPDIR (default /var/tmp), deleted on every exit.
#   3. `meson install --destdir` of the build this test runs from (units, daemon and probe at
#      the build's prefix, default /usr/local), a test configuration at the path compiled into
#      tcpechod, tcpechod.socket enabled, a watchdog drop-in and tcpecho-check.service, a
#      oneshot that runs check.sh and ends the container with `systemctl exit RC`.
#   4. systemd-nspawn -b, bounded by timeout(1); its exit status is the checks' result.
#
# Environment (set by tests/system/meson.build):
#   TCPECHO_BUILD_ROOT  the meson build directory to install from
#   TCPECHO_SBINDIR, TCPECHO_BINDIR, TCPECHO_CONFIG  installed paths of daemon, probe, config
#   TCPECHO_B_SANITIZE  the build's b_sanitize: the test skips unless 'none' (ASan/UBSan
#                       binaries would need libasan/libubsan inside the tree)
#   TCPECHO_SKIP_SYSTEM_TESTS=1  skip (77) on purpose, e.g. on a machine without network
# Exit status: 0 pass, 1 fail, 77 skip.
set -euo pipefail

SKIP=77
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit "$SKIP"; }
die() { echo "ERROR: $*" >&2; exit 1; }

[ "${TCPECHO_SKIP_SYSTEM_TESTS:-0}" = 1 ] && skip "TCPECHO_SKIP_SYSTEM_TESTS=1"
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
sanitize=${TCPECHO_B_SANITIZE:-none}
[ "$sanitize" = none ] || skip "build uses b_sanitize=$sanitize; the container has no sanitizer runtime (run the system suite from a build without sanitizers)"
for tool in systemd-nspawn debootstrap systemctl timeout flock; do
    command -v "$tool" >/dev/null || skip "$tool not found (Debian packages systemd-container, debootstrap; scripts/setup-deps.sh installs them)"
done
: "${TCPECHO_BUILD_ROOT:?}" "${TCPECHO_SBINDIR:?}" "${TCPECHO_BINDIR:?}" "${TCPECHO_CONFIG:?}"

# --- The mirror and release: those of this machine, whose libraries the binaries link.
. /etc/os-release
[ "${ID:-}" = debian ] && [ -n "${VERSION_CODENAME:-}" ] || skip "not a Debian release (ID=${ID:-?}); the tree is a Debian tree of the host's release"
suite=$VERSION_CODENAME
mirror=""
keyring=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    # deb822: the first stanza of Types: deb whose Suites: has the release itself.
    read -r mirror keyring < <(awk -v suite="$suite" '
        function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "" && !found) { print uri, key; found = 1 } types = suites = uri = key = "" }
        /^[ \t]*$/ { flush(); next }
        /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
        /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
        /^URIs:/ { uri = $2 }
        /^Signed-By:/ { key = $2 }
        END { flush() }' "$f") || true
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -e /etc/apt/sources.list ]; then
    mirror=$(awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++; if ($(i + 1) == suite) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no 'deb' source for $suite in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
keyring_arg=()
[ -n "$keyring" ] && [ -f "$keyring" ] && keyring_arg=(--keyring="$keyring")

# --- The cached tree. Runtime libraries of tcpechod and tcpecho-probe (Debian 12 names:
# libev4, libtomlplusplus3, libsystemd0); procps for /bin/kill (ExecReload=), man-db so that
# `systemd-analyze verify` can check the Documentation= links inside the tree.
packages="systemd,systemd-sysv,dbus,procps,man-db,libev4,libtomlplusplus3,libsystemd0"
prep_version=1   # bump when the preparation of the cached tree below changes
cache_root=${TCPECHO_SYSTEM_CACHE:-/var/cache/tcpecho-tests}
key=$(printf '%s\n' "$suite" "$mirror" minbase "$packages" "$prep_version" | sha256sum | cut -c1-12)
cached="$cache_root/$suite-$key"
mkdir -p "$cache_root"

run_dir=""
nspawn_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # $nspawn_pid is timeout(1), which passes SIGTERM on to systemd-nspawn (the container
        # then shuts down); if that takes too long, SIGKILL both (the container's processes
        # die with systemd-nspawn).
        local child
        child=$(cat "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null || true)
        echo "stopping the container (timeout pid $nspawn_pid, systemd-nspawn pid ${child:-?})" >&2
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            for p in $child; do kill -KILL "$p" 2>/dev/null || true; done
            kill -KILL "$nspawn_pid" 2>/dev/null || true
        fi
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    [ -n "$run_dir" ] && rm -rf --one-file-system "$run_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t_start=$(date +%s)
(
    flock -x 9
    if [ ! -d "$cached" ]; then
        # Leftovers of a build that was killed: we hold the lock, nobody else is building.
        rm -rf --one-file-system "$cache_root"/.tmp-*
        tmp=$(mktemp -d "$cache_root/.tmp-$suite-$key.XXXXXX")
        trap 'rm -rf --one-file-system "$tmp"' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        echo "debootstrap $suite from $mirror into $tmp (cached as $cached; takes a few minutes)"
        if ! debootstrap --variant=minbase --include="$packages" "${keyring_arg[@]}" \
                "$suite" "$tmp/tree" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
            tail -n 30 "$tmp/debootstrap.log" >&2
            [ -f "$tmp/tree/debootstrap/debootstrap.log" ] && tail -n 30 "$tmp/tree/debootstrap/debootstrap.log" >&2
            echo "ERROR: debootstrap failed" >&2
            exit 1
        fi
        rm -f "$tmp/tree"/var/cache/apt/archives/*.deb
        echo tcpecho-test >"$tmp/tree/etc/hostname"
        # No login prompt on the read-only console.
        ln -sf /dev/null "$tmp/tree/etc/systemd/system/console-getty.service"
        mv "$tmp/debootstrap.log" "$tmp/tree/root/debootstrap-host.log"
        mv -T "$tmp/tree" "$cached"
        rmdir "$tmp"
        trap - EXIT
    fi
) 9>"$cache_root/.lock"
t_cache=$(date +%s)
echo "tree: $cached ($((t_cache - t_start)) s)"

# --- The per-run copy.
run_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/tcpecho-system.XXXXXX")
tree="$run_dir/tree"
cp -a --reflink=auto "$cached" "$tree"
# A machine ID of its own: not a first boot (no systemd-firstboot), distinct journals.
tr -d -- - </proc/sys/kernel/random/uuid >"$tree/etc/machine-id"

meson install -C "$TCPECHO_BUILD_ROOT" --destdir "$tree" --no-rebuild --quiet
test_dir="$tree/root/tcpecho-test"
mkdir -p "$test_dir" "$(dirname "$tree$TCPECHO_CONFIG")"
install -m 0755 "$here/check.sh" "$test_dir/check.sh"
cat >"$test_dir/env" <<ENV
TCPECHOD=$TCPECHO_SBINDIR/tcpechod
PROBE=$TCPECHO_BINDIR/tcpecho-probe
CONFIG=$TCPECHO_CONFIG
ENV
# The configuration the daemon reads at start (the path compiled into tcpechod). "echo" has
# sockets passed by tcpechod.socket; "echo-length" has none and must be left unserved.
install -m 0644 "$here/tcpechod-test.toml" "$tree$TCPECHO_CONFIG"

# The check unit: runs after boot, and whatever happens (failure, its own timeout) its
# ExecStopPost= ends the container with the check's exit status.
cat >"$tree/etc/systemd/system/tcpecho-check.service" <<'UNIT'
[Unit]
Description=tcpecho system test checks
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/root/tcpecho-test/check.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=200s
ExecStopPost=/bin/sh -c 'rc=1; if [ "$SERVICE_RESULT" = success ]; then rc=0; elif [ "$EXIT_CODE" = exited ]; then rc=$EXIT_STATUS; fi; echo "tcpecho-check: $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS -> container exit $rc" >/dev/console; systemctl --no-block exit $rc'
UNIT
mkdir -p "$tree/etc/systemd/system/multi-user.target.wants"
ln -sf ../tcpecho-check.service "$tree/etc/systemd/system/multi-user.target.wants/tcpecho-check.service"
systemctl --root="$tree" --quiet enable tcpechod.socket
# For the test only: the shipped WatchdogSec=20s would make check 4 wait 20 s or more.
mkdir -p "$tree/etc/systemd/system/tcpechod.service.d"
cat >"$tree/etc/systemd/system/tcpechod.service.d/test-watchdog.conf" <<'CONF'
# tests/system: shortens the shipped WatchdogSec=20s so the watchdog check takes seconds.
[Service]
WatchdogSec=3s
CONF
t_prep=$(date +%s)
echo "tree prepared in $((t_prep - t_cache)) s; booting"

# --- Boot. The container's exit status is the checks' (systemctl exit RC).
timeout_s=${TCPECHO_SYSTEM_TIMEOUT:-300}
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 timeout -k 10 "$timeout_s" \
    systemd-nspawn -q --keep-unit --register=no --private-network -b -D "$tree" \
    --machine="tcpecho-test-$$" \
    --console=read-only </dev/null &
nspawn_pid=$!
set +e
wait "$nspawn_pid"
rc=$?
set -e
nspawn_pid=""
t_end=$(date +%s)

echo
echo "===== check.sh output (from the container) ====="
if [ -f "$test_dir/check.log" ]; then cat "$test_dir/check.log"; else echo "(no check.log: the check did not run)"; fi
echo "================================================"
echo "container exit status $rc; boot + checks $((t_end - t_prep)) s, total $((t_end - t_start)) s"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL: the container did not finish within ${timeout_s} s"
    exit 1
fi
[ "$rc" -eq 0 ] || { echo "FAIL: container exit status $rc"; exit 1; }
echo "PASS"
