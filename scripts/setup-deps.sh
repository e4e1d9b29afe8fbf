#!/usr/bin/env bash
# Installs what tcpecho needs on Debian 12, and nothing that is already there. Uses sudo when
# not root.
#
#   scripts/setup-deps.sh [demo|test]    (default: test)
#   scripts/setup-deps.sh --list [demo|test]   print the package list, install nothing
#
# demo: what building and running tcpechod and tcpecho-probe need (scripts/demo.sh): the
#       compiler, meson, and the three libraries. A few dozen packages on a fresh machine.
# test: that, plus what the whole test suite uses (scripts/test.sh): Catch2, clang for the
#       fuzzers, network namespaces and fault injection, real systemd in a container, the man
#       page checks, and the Debian and RPM packaging tools.
set -euo pipefail

demo_packages=(
    g++ meson ninja-build pkg-config python3
    libev-dev libtomlplusplus-dev libsystemd-dev
)
test_packages=(
    "${demo_packages[@]}"
    catch2
    procps iproute2 nftables ethtool libnetfilter-queue-dev strace iptables
    clang libclang-rt-14-dev
    systemd systemd-container debootstrap
    mandoc man-db bash-completion
    prometheus
    rpm rpmlint
    debhelper lintian dpkg-dev
)

list=0
if [ "${1:-}" = "--list" ]; then
    list=1
    shift
fi
case "${1:-test}" in
demo) packages=("${demo_packages[@]}") ;;
test) packages=("${test_packages[@]}") ;;
*) echo "usage: $0 [--list] [demo|test]" >&2; exit 2 ;;
esac
if [ "$list" -eq 1 ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing: ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
