#!/usr/bin/env bash
# usage: rpm_test.sh SOURCE_ROOT
# Builds tcpecho's RPM with packaging/rpm/build-rpm.sh --nocheck --fast and checks: the file
# list, %config on the configuration file, the systemd scriptlets, and that rpmlint is clean
# after the documented filters (packaging/rpm/rpmlint-host-only.txt).
# Exit status: 0 pass, 1 fail, 77 skip (rpmbuild or rpmlint missing).
set -euo pipefail

root=${1:?usage: rpm_test.sh SOURCE_ROOT}
for tool in rpmbuild rpmlint git; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (Debian packages: rpm rpmlint)"; exit 77; }
done
[ "$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$root" && pwd -P)" ] ||
    { echo "SKIP: $root is not a git checkout (Source0 comes from git ls-files)"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }

out=$(mktemp -d "${TMPDIR:-/tmp}/tcpecho-rpm-test.XXXXXX")
trap 'rm -rf "$out"' EXIT

status=0
"$root/packaging/rpm/build-rpm.sh" --nocheck --fast --outdir "$out/top" >"$out/log" 2>&1 || status=$?
cat "$out/log"
[ "$status" = 0 ] || fail "build-rpm.sh exited $status"

rpm_path=$(tail -n 1 "$out/log")
[[ "$rpm_path" == "$out/top/RPMS/"*/tcpecho-*.rpm ]] || fail "last line is not the RPM's path: $rpm_path"
[ -f "$rpm_path" ] || fail "$rpm_path does not exist"

version=$(meson introspect --projectinfo "$root/meson.build" |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ "$(rpm -qp --qf '%{NAME} %{VERSION} %{LICENSE}' "$rpm_path")" = "tcpecho $version MIT" ] ||
    fail "name/version/licence: $(rpm -qp --qf '%{NAME} %{VERSION} %{LICENSE}' "$rpm_path")"

# File list, independently of build-rpm.sh's own check. The unit directory is systemd.pc's
# (/lib/systemd/system on Debian 12).
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)
listing=$(rpm -qlp "$rpm_path")
for f in /usr/sbin/tcpechod /usr/bin/tcpecho-probe \
         "$unitdir/tcpechod.service" "$unitdir/tcpechod.socket" \
         /etc/tcpechod /etc/tcpechod/tcpechod.toml \
         /usr/share/man/man1/tcpecho-probe.1.gz /usr/share/man/man5/tcpechod.toml.5.gz \
         /usr/share/man/man8/tcpechod.8.gz \
         /usr/share/bash-completion/completions/tcpechod \
         /usr/share/bash-completion/completions/tcpecho-probe \
         /usr/share/doc/tcpecho/README.md /usr/share/licenses/tcpecho/LICENSE; do
    grep -qxF "$f" <<<"$listing" || fail "$f not in the RPM"
done
# Nothing from the build tree or the tests.
if grep -vE '^(/usr/(s?bin|share/(man|bash-completion|doc|licenses))/|/usr/lib/\.build-id(/|$)|/etc/tcpechod(/|$)|'"$unitdir"'/)' <<<"$listing"; then
    fail "unexpected files in the RPM (above)"
fi

# /etc/tcpechod/tcpechod.toml is %config(noreplace): flags include config (c) and noreplace (n).
flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm_path" |
        awk '$1 == "/etc/tcpechod/tcpechod.toml" { print $2 }')
[[ "$flags" == *c* && "$flags" == *n* ]] ||
    fail "/etc/tcpechod/tcpechod.toml is not %config(noreplace) (flags '$flags')"

# The scriptlets: the spec's %systemd_* calls (comments from the Debian-host shim here).
scripts=$(rpm -qp --scripts "$rpm_path")
for s in 'systemd_post tcpechod.socket tcpechod.service' \
         'systemd_preun tcpechod.socket tcpechod.service' \
         'systemd_postun_with_restart tcpechod.socket tcpechod.service'; do
    grep -qF "$s" <<<"$scripts" || fail "scriptlet '$s' missing"
done

grep -qxF 'rpmlint: clean after filtering (rpmlint-host-only.txt)' "$out/log" || fail "rpmlint not clean"
echo "PASS: $rpm_path"
