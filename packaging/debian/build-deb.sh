#!/usr/bin/env bash
# Builds the Debian binary package of this checkout and checks it with lintian.
#
#   packaging/debian/build-deb.sh [OUTPUT_DIR]        (default: build-deb-out/ in the source root)
#
# The debian/ directory lives in packaging/debian/ of the repository, but dpkg-buildpackage
# wants ./debian at the source root, so this copies the source tree (the files git knows
# about: tracked ones and untracked ones that are not ignored, so build*/ directories stay
# out; without git: everything but build*/ and .git) into a temporary directory, copies
# packaging/debian to debian/ there and runs `dpkg-buildpackage -us -uc -b` in that copy.
# DEB_BUILD_OPTIONS and DEB_BUILD_PROFILES are passed through (DEB_BUILD_OPTIONS=nocheck skips
# building and running the test suite; without it the suites run, except 'system').
# Parallel jobs: the number of CPUs unless DEB_BUILD_OPTIONS already has parallel=N.
#
# Output, copied into OUTPUT_DIR (VERSION from debian/changelog, = meson's project version;
# ARCH from `dpkg --print-architecture`):
#   tcpecho_VERSION_ARCH.deb          the package (e.g. tcpecho_0.1.0_amd64.deb)
#   tcpecho-dbgsym_VERSION_ARCH.deb   detached debug symbols
#   tcpecho_VERSION_ARCH.changes, tcpecho_VERSION_ARCH.buildinfo
#   build.log                         dpkg-buildpackage's output
#   lintian.txt                       `lintian -EvI -L +pedantic` of the .changes
# The last line on stdout is the absolute path of the package, e.g.
#   deb=$(packaging/debian/build-deb.sh /tmp/out | tail -n1)
#
# Exit status: 0 built and lintian shows no error or warning; 1 otherwise (the build log or
# the lintian tags are printed). Needs the Build-Depends of debian/control (dpkg-checkbuilddeps
# reports missing ones), dpkg-dev and lintian; root is not needed (Rules-Requires-Root: no).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=${1:-$src/build-deb-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-buildpackage dpkg-parsechangelog lintian; do
    command -v "$tool" >/dev/null || { echo "ERROR: $tool not found (Debian packages dpkg-dev, lintian)" >&2; exit 1; }
done

version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
arch=$(dpkg --print-architecture)
work=$(mktemp -d "${TMPDIR:-/tmp}/tcpecho-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/tcpecho-$version"
mkdir "$tree"

# --- The source tree, without build directories and without the previous debian/ copy.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$src" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
        (cd "$src" && tar --null -T - -cf -) | tar -C "$tree" -xf -
else
    tar -C "$src" --exclude='./build*' --exclude=./.git --exclude=./debian -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -a "$here" "$tree/debian"
rm -f "$tree/debian/build-deb.sh"   # not part of the package's debian/ directory

# --- Build. -J: parallel=<CPUs> unless DEB_BUILD_OPTIONS already says parallel=N.
echo "building tcpecho $version ($arch) in $tree (DEB_BUILD_OPTIONS='${DEB_BUILD_OPTIONS:-}')" >&2
start=$(date +%s)
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b -Jauto) >"$out/build.log" 2>&1; then
    tail -n 150 "$out/build.log" >&2
    echo "ERROR: dpkg-buildpackage failed (full log: $out/build.log)" >&2
    exit 1
fi
echo "dpkg-buildpackage took $(( $(date +%s) - start )) s" >&2

changes="$work/tcpecho_${version}_${arch}.changes"
[ -f "$changes" ] || { echo "ERROR: $changes not produced" >&2; exit 1; }
for f in "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo; do
    cp "$f" "$out/"
done

# --- lintian: no error, no warning (info and pedantic tags are listed, not fatal).
lintian -EvI -L +pedantic "$changes" >"$out/lintian.txt" 2>&1 || true
cat "$out/lintian.txt" >&2
if grep -qE '^[EW]: ' "$out/lintian.txt"; then
    echo "ERROR: lintian reports errors or warnings (above)" >&2
    exit 1
fi
echo "$out/tcpecho_${version}_${arch}.deb"
