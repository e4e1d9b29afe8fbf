#!/usr/bin/env bash
# System test: boots real systemd in a container (systemd-nspawn) with this checkout's Debian
# package installed, and runs check.sh inside it (meson suite 'system').
#
#   1. The package: packaging/debian/build-deb.sh with DEB_BUILD_OPTIONS=nocheck builds
#      tcpecho_VERSION_ARCH.deb from the source tree (lintian included; ~65 s here), into
#      the per-run directory. TCPECHO_SYSTEM_DEB=/path/to/tcpecho_*.deb uses that package
#      instead (no build), e.g. one build-deb.sh already made.
#   2. A minimal Debian tree (debootstrap --variant=minbase) of this machine's release, from
#      the mirror in this machine's apt configuration, cached outside the repo in
#      $TCPECHO_SYSTEM_CACHE (default /var/cache/tcpecho-tests)/<codename>-<hash>, the hash
#      covering mirror, release, package list and the preparation below. Built in a temporary
#      directory and renamed into place under a lock, so an interrupted run leaves no broken
#      cache. First run ~4 min here (debootstrap 221 s, network).
#   3. A per-run copy (cp --reflink=auto) in $TMPDIR (default /var/tmp), deleted on every exit.
#   4. The package installed into the copy with `apt-get install /root/tcpecho_*.deb` run by
#      systemd-nspawn (not booted, the host's network): apt resolves the dependencies (all in
#      the cached tree already, from its package lists; `apt-get update` and a second try only
#      if that fails). Its postinst enables tcpechod.socket (deb-systemd-helper) and, systemd
#      not running, starts nothing. Then the test configuration over the conffile, a watchdog
#      drop-in and tcpecho-check.service, a oneshot that runs check.sh and ends the container
#      with `systemctl exit RC`.
#   5. systemd-nspawn -b --private-network, bounded by timeout(1); its exit status is the
#      checks' result. check.sh ends with `apt-get purge tcpecho` (no download needed).
#
# Environment (set by tests/system/meson.build):
#   TCPECHO_SOURCE_ROOT  the source tree the package is built from
#   TCPECHO_B_SANITIZE  the build's b_sanitize: the test skips unless 'none' (the sanitizer
#                       pass of scripts/test.sh leaves this suite to the normal build)
#   TCPECHO_SYSTEM_DEB  optional: an already built tcpecho .deb to install (skips the build)
#   TCPECHO_SYSTEM_TIMEOUT  seconds for the boot and the checks (default 300)
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
[ "$sanitize" = none ] || skip "build uses b_sanitize=$sanitize; the system suite runs from a build without sanitizers (it tests the package built from the sources, not this build)"
for tool in systemd-nspawn debootstrap systemctl timeout flock; do
    command -v "$tool" >/dev/null || skip "$tool not found (Debian packages systemd-container, debootstrap; scripts/setup-deps.sh installs them)"
done
: "${TCPECHO_SOURCE_ROOT:?}"
deb=${TCPECHO_SYSTEM_DEB:-}
if [ -n "$deb" ]; then
    [ -f "$deb" ] || die "TCPECHO_SYSTEM_DEB=$deb: no such file"
else
    for tool in dpkg-buildpackage dpkg-parsechangelog dpkg-checkbuilddeps lintian; do
        command -v "$tool" >/dev/null || skip "$tool not found (Debian packages dpkg-dev, lintian; needed to build the package)"
    done
    # The Build-Depends of a nocheck build (debhelper, the -dev packages, ...).
    if ! out=$(cd "$TCPECHO_SOURCE_ROOT" && dpkg-checkbuilddeps -P nocheck packaging/debian/control 2>&1); then
        skip "build dependencies of the package missing: $out"
    fi
fi

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

# --- The per-run directory, the package and the per-run copy of the tree.
run_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/tcpecho-system.XXXXXX")
tree="$run_dir/tree"
if [ -z "$deb" ]; then
    echo "building the package: DEB_BUILD_OPTIONS=nocheck packaging/debian/build-deb.sh"
    if ! deb=$(cd "$TCPECHO_SOURCE_ROOT" && DEB_BUILD_OPTIONS=nocheck packaging/debian/build-deb.sh "$run_dir/deb" 2>"$run_dir/build-deb.err" | tail -n1); then
        tail -n 60 "$run_dir/build-deb.err" >&2
        die "packaging/debian/build-deb.sh failed"
    fi
    grep -E '^dpkg-buildpackage took' "$run_dir/build-deb.err" || true
    [ -f "$deb" ] || die "build-deb.sh printed '$deb', not a package file"
fi
t_deb=$(date +%s)
echo "package: $deb ($(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $(dpkg-deb -f "$deb" Architecture); $((t_deb - t_cache)) s)"

cp -a --reflink=auto "$cached" "$tree"
# A machine ID of its own: not a first boot (no systemd-firstboot), distinct journals.
tr -d -- - </proc/sys/kernel/random/uuid >"$tree/etc/machine-id"

# --- The package, installed by apt in the (not booted) tree: apt resolves its Depends from
# the tree's package lists; the postinst enables tcpechod.socket (systemd is not running, so
# nothing is started). Only if that fails: apt-get update (the mirror) and once more.
deb_name=$(basename "$deb")
cp "$deb" "$tree/root/$deb_name"
in_tree() {
    timeout -k 5 "$1" systemd-nspawn -q --keep-unit --register=no -D "$tree" \
        --setenv=DEBIAN_FRONTEND=noninteractive --setenv=LC_ALL=C "${@:2}" </dev/null
}
if ! in_tree 180 apt-get install -y --no-install-recommends "/root/$deb_name" >"$run_dir/apt.log" 2>&1; then
    echo "apt-get install failed; apt-get update and again:"
    tail -n 15 "$run_dir/apt.log" | sed 's/^/    /'
    in_tree 180 apt-get update >>"$run_dir/apt.log" 2>&1 || { tail -n 30 "$run_dir/apt.log" >&2; die "apt-get update in the tree failed"; }
    in_tree 300 apt-get install -y --no-install-recommends "/root/$deb_name" >>"$run_dir/apt.log" 2>&1 ||
        { tail -n 40 "$run_dir/apt.log" >&2; die "apt-get install /root/$deb_name in the tree failed"; }
fi
grep -E '^(Setting up|Unpacking|[0-9]+ upgraded)' "$run_dir/apt.log" | sed 's/^/  apt: /'
rm -f "$tree/root/$deb_name"
cp "$run_dir/apt.log" "$tree/root/apt-install.log"

# The installed paths (where the package puts them; check.sh checks them too).
TCPECHOD=/usr/sbin/tcpechod
PROBE=/usr/bin/tcpecho-probe
CONFIG=/etc/tcpechod/tcpechod.toml
for f in "$TCPECHOD" "$PROBE" "$CONFIG"; do
    [ -e "$tree$f" ] || die "$f not installed by the package"
done
test_dir="$tree/root/tcpecho-test"
mkdir -p "$test_dir"
install -m 0755 "$here/check.sh" "$test_dir/check.sh"
cat >"$test_dir/env" <<ENV
TCPECHOD=$TCPECHOD
PROBE=$PROBE
CONFIG=$CONFIG
PACKAGE=$(dpkg-deb -f "$deb" Package)
VERSION=$(dpkg-deb -f "$deb" Version)
ENV
# The configuration the daemon reads at start, over the package's conffile (purge removes a
# modified conffile as well). "echo" has sockets passed by tcpechod.socket; "echo-length" has
# none and must be left unserved.
install -m 0644 "$here/tcpechod-test.toml" "$tree$CONFIG"

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
# For the test only: the shipped WatchdogSec=20s would make check 4 wait 20 s or more.
# (check.sh removes this drop-in before the purge: it is the test's file, not the package's.)
mkdir -p "$tree/etc/systemd/system/tcpechod.service.d"
cat >"$tree/etc/systemd/system/tcpechod.service.d/test-watchdog.conf" <<'CONF'
# tests/system: shortens the shipped WatchdogSec=20s so the watchdog check takes seconds.
[Service]
WatchdogSec=3s
CONF
t_prep=$(date +%s)
echo "tree prepared (package installed) in $((t_prep - t_deb)) s; booting"

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
echo "container exit status $rc; tree $((t_cache - t_start)) s, package $((t_deb - t_cache)) s, install $((t_prep - t_deb)) s, boot + checks $((t_end - t_prep)) s, total $((t_end - t_start)) s"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAIL: the container did not finish within ${timeout_s} s"
    exit 1
fi
[ "$rc" -eq 0 ] || { echo "FAIL: container exit status $rc"; exit 1; }
echo "PASS"
