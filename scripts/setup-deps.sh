#!/usr/bin/env bash
# Installs what building and testing tcpecho needs on Debian 12, and nothing that is already
# there. Uses sudo when not root.
set -euo pipefail

packages=(
    g++ meson ninja-build pkg-config python3
    libev-dev libtomlplusplus-dev catch2 libsystemd-dev
    procps iproute2 nftables ethtool libnetfilter-queue-dev strace iptables
    clang libclang-rt-14-dev
    systemd systemd-container debootstrap
    mandoc man-db bash-completion
    rpm rpmlint
    debhelper lintian dpkg-dev
)
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
