#!/usr/bin/env bash
# Builds the tcpecho binary RPM from packaging/rpm/tcpechod.spec on a Debian host, then lints
# it and checks its contents.
#
# usage: packaging/rpm/build-rpm.sh [--nocheck] [--fast] [--outdir DIR]
#   --nocheck     rpmbuild --without check: configure with -Dtests=false and skip %check
#                 (the meson test suites are run elsewhere; %check costs minutes)
#   --fast        compile with -O0 instead of rpm's %optflags (-O2 -g): for checking the
#                 packaging (tests/rpm), not for an RPM to ship
#   --outdir DIR  rpmbuild's %_topdir (default: a new directory under ${TMPDIR:-/tmp});
#                 the RPM ends up in DIR/RPMS/<arch>/
#
# What differs from a Fedora build, and why:
#   - Debian's rpm has none of Fedora's meson/systemd/bash-completion macros:
#     macros.debian-shim (loaded with --load) defines them, the systemd scriptlet macros as
#     comments only.
#   - The BuildRequires name Fedora packages, which rpm's database on Debian does not know:
#     rpmbuild --nodeps (scripts/setup-deps.sh installs the Debian equivalents).
#   - rpmlint findings that only come from linting on a Debian host are dropped by the
#     patterns in rpmlint-host-only.txt (each with its reason); any other error or warning
#     fails.
# Source0 is made from the files git tracks, as they are in the working tree (uncommitted
# edits included, untracked files not), under tcpecho-VERSION/.
#
# Prints the RPM's path on the last line. Exit status: 0 ok, 1 failure, 2 usage/missing tools.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
spec=$here/tcpechod.spec
shim=$here/macros.debian-shim
host_only=$here/rpmlint-host-only.txt

nocheck=0
fast=0
top=""
while [ $# -gt 0 ]; do
    case "$1" in
        --nocheck) nocheck=1 ;;
        --fast) fast=1 ;;
        --outdir) [ $# -ge 2 ] || { echo "build-rpm.sh: --outdir needs a directory" >&2; exit 2; }
                  top=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-rpm.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

for tool in rpmbuild rpmspec rpm rpmlint git meson python3 pkg-config; do
    command -v "$tool" >/dev/null || {
        echo "build-rpm.sh: '$tool' not found (Debian packages: rpm rpmlint; scripts/setup-deps.sh)" >&2
        exit 2
    }
done

fail() { echo "build-rpm.sh: FAIL: $*" >&2; exit 1; }

# The version: meson.build is the source of truth; the spec must agree.
version=$(meson introspect --projectinfo "$root/meson.build" |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
name=$(rpmspec --load "$shim" -q --srpm --qf '%{NAME}' "$spec")
spec_version=$(rpmspec --load "$shim" -q --srpm --qf '%{VERSION}' "$spec")
[ "$spec_version" = "$version" ] ||
    fail "tcpechod.spec has Version: $spec_version, meson.build has version $version"

if [ -z "$top" ]; then
    top=$(mktemp -d "${TMPDIR:-/tmp}/tcpecho-rpm.XXXXXX")
fi
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
top=$(cd "$top" && pwd)

# Source0: tracked files from the working tree; reproducible order, owner and mtime.
tarball=$top/SOURCES/$name-$version.tar.gz
mtime=$(git -C "$root" log -1 --format=%cI HEAD)
(cd "$root" && git ls-files -z --cached |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --create --null --files-from=- --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="$mtime" --transform="s,^,$name-$version/," |
    gzip -n >"$tarball")
cp "$spec" "$top/SPECS/"

rpmbuild_args=(--nodeps --load "$shim" --define "_topdir $top" -bb --clean)
[ "$nocheck" = 1 ] && rpmbuild_args+=(--without check)
[ "$fast" = 1 ] && rpmbuild_args+=(--define "optflags -O0")
echo "== rpmbuild ${rpmbuild_args[*]@Q} tcpechod.spec"
start=$(date +%s)
rpmbuild "${rpmbuild_args[@]}" "$top/SPECS/tcpechod.spec" >"$top/rpmbuild.log" 2>&1 || {
    tail -n 60 "$top/rpmbuild.log" >&2
    fail "rpmbuild failed; full log: $top/rpmbuild.log"
}
echo "rpmbuild took $(( $(date +%s) - start )) s; log: $top/rpmbuild.log"

mapfile -t rpms < <(find "$top/RPMS" -name '*.rpm' -type f | sort)
[ "${#rpms[@]}" -ge 1 ] || fail "rpmbuild made no RPM"
main_rpm=""
for r in "${rpms[@]}"; do
    [ "$(rpm -qp --qf '%{NAME}' "$r" 2>/dev/null)" = "$name" ] && main_rpm=$r
done
[ -n "$main_rpm" ] || fail "no $name RPM among: ${rpms[*]}"

# Contents: every file the spec promises, at the path meson installs it to on this host.
unitdir=$(rpm --load "$shim" --eval '%{_unitdir}')
expected=(
    /usr/sbin/tcpechod
    /usr/bin/tcpecho-probe
    "$unitdir/tcpechod.service"
    "$unitdir/tcpechod.socket"
    /etc/tcpechod
    /etc/tcpechod/tcpechod.toml
    /usr/share/man/man1/tcpecho-probe.1.gz
    /usr/share/man/man5/tcpechod.toml.5.gz
    /usr/share/man/man8/tcpechod.8.gz
    /usr/share/bash-completion/completions/tcpechod
    /usr/share/bash-completion/completions/tcpecho-probe
    /usr/share/doc/$name/README.md
    /usr/share/licenses/$name/LICENSE
)
listing=$(rpm -qlp "$main_rpm")
echo "== rpm -qlp $(basename "$main_rpm")"
echo "$listing"
for f in "${expected[@]}"; do
    grep -qxF "$f" <<<"$listing" || fail "$f missing from $(basename "$main_rpm")"
done
grep -qxF /etc/tcpechod/tcpechod.toml <<<"$(rpm -qcp "$main_rpm")" ||
    fail "/etc/tcpechod/tcpechod.toml is not marked %config"

echo "== rpm -qp --scripts $(basename "$main_rpm")"
echo "(the systemd_* macros are no-ops from macros.debian-shim here; Fedora's systemd-rpm-macros expand them)"
rpm -qp --scripts "$main_rpm"

# rpmlint over the spec and every RPM built; host-only findings filtered with their reason.
echo "== rpmlint"
lint_out=$(rpmlint "$spec" "${rpms[@]}" 2>&1) || true
echo "$lint_out"
patterns=()
kinds=()
reasons=()
reason=""
while IFS= read -r line; do
    case "$line" in
        '#'*) reason="${reason:+$reason }$(sed 's/^#[[:space:]]*//' <<<"$line")" ;;
        filter:*|accept:*)
            [ -n "$reason" ] || fail "rpmlint-host-only.txt: no reason given for '$line'"
            kinds+=("${line%%:*}")
            patterns+=("$(sed 's/^[a-z]*:[[:space:]]*//' <<<"$line")")
            reasons+=("$reason") ;;
        '') reason="" ;;
    esac
done <"$host_only"
remaining=()
while IFS= read -r line; do
    [[ "$line" =~ :\ [EW]:\  ]] || continue
    matched=0
    for i in "${!patterns[@]}"; do
        if grep -qE -- "${patterns[$i]}" <<<"$line"; then
            if [ "${kinds[$i]}" = filter ]; then
                echo "filtered (host-only): $line"
            else
                echo "accepted (NOT host-only): $line"
            fi
            echo "    reason: ${reasons[$i]}"
            matched=1
            break
        fi
    done
    [ "$matched" = 1 ] || remaining+=("$line")
done <<<"$lint_out"
if [ "${#remaining[@]}" -gt 0 ]; then
    printf 'rpmlint finding not known to be host-only: %s\n' "${remaining[@]}" >&2
    fail "rpmlint: ${#remaining[@]} error(s)/warning(s) left after filtering"
fi
echo "rpmlint: clean after filtering (rpmlint-host-only.txt)"
echo "$main_rpm"
