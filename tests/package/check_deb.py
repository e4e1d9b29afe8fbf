#!/usr/bin/env python3
"""The Debian package of packaging/debian (meson suite 'package').

  check_deb.py version SOURCE_DIR MESON_VERSION
      packaging/debian/changelog's top version equals meson's project version (a native
      package: no Debian revision).
  check_deb.py build SOURCE_DIR MESON_VERSION
      packaging/debian/build-deb.sh into a temporary directory with DEB_BUILD_OPTIONS=nocheck
      and DEB_BUILD_PROFILES=nocheck: the test suite is neither built nor run inside the
      package build, because this suite is part of that very test suite (a full build runs it,
      see debian/rules). build-deb.sh fails on any lintian error or warning. Then:
      `dpkg-deb -c` has the daemon, the probe, the configuration, both units, the man pages and
      the completions; `dpkg-deb -I`: version, Depends on procps, conffiles lists
      /etc/tcpechod/tcpechod.toml; the maintainer scripts enable and start tcpechod.socket
      only (never tcpechod.service), stop it on removal and purge its state.

Exit status: 0 pass, 1 fail, 77 skip (dpkg-buildpackage, debhelper or lintian missing).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77


def changelog_version(source):
    path = os.path.join(source, "packaging", "debian", "changelog")
    with open(path) as f:
        first = f.readline()
    m = re.match(r"^tcpecho \(([^)]+)\) \S+; urgency=\S+$", first.rstrip("\n"))
    if m is None:
        raise SystemExit(f"FAIL: unexpected first line of {path}: {first!r}")
    return m.group(1)


def check_version(source, meson_version):
    version = changelog_version(source)
    print(f"debian/changelog: {version}, meson.build: {meson_version}")
    if version != meson_version:
        print("FAIL: debian/changelog's version differs from meson's project version "
              "(add a changelog entry: the package is native, so the versions are equal)")
        return 1
    print("PASS")
    return 0


EXPECTED_FILES = [
    "./usr/sbin/tcpechod",
    "./usr/bin/tcpecho-probe",
    "./etc/tcpechod/tcpechod.toml",
    "./lib/systemd/system/tcpechod.service",
    "./lib/systemd/system/tcpechod.socket",
    "./usr/share/man/man8/tcpechod.8.gz",
    "./usr/share/man/man1/tcpecho-probe.1.gz",
    "./usr/share/man/man5/tcpechod.toml.5.gz",
    "./usr/share/bash-completion/completions/tcpechod",
    "./usr/share/bash-completion/completions/tcpecho-probe",
    "./usr/share/doc/tcpecho/copyright",
]


def check_build(source, meson_version):
    for tool in ("dpkg-buildpackage", "dpkg-deb", "lintian", "dh"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} not found (Debian packages dpkg-dev, debhelper, lintian; "
                  "scripts/setup-deps.sh installs them)")
            return SKIP
    problems = []
    with tempfile.TemporaryDirectory(prefix="tcpecho-deb-test-") as out:
        env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck", DEB_BUILD_PROFILES="nocheck")
        script = os.path.join(source, "packaging", "debian", "build-deb.sh")
        start = time.monotonic()
        p = subprocess.run([script, out], env=env, capture_output=True, text=True)
        print(p.stderr, end="")
        print(f"build-deb.sh: exit status {p.returncode} after {time.monotonic() - start:.0f} s")
        if p.returncode != 0:
            print("FAIL: build-deb.sh failed (output above)")
            return 1
        deb = p.stdout.strip().splitlines()[-1]
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
        if os.path.basename(deb) != f"tcpecho_{meson_version}_{arch}.deb" or not os.path.isfile(deb):
            print(f"FAIL: build-deb.sh names {deb!r}, expected {out}/tcpecho_{meson_version}_{arch}.deb")
            return 1

        contents = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                                  check=True).stdout
        paths = {line.split()[5] for line in contents.splitlines() if len(line.split()) >= 6}
        print("contents:\n  " + "\n  ".join(sorted(paths)))
        for f in EXPECTED_FILES:
            if f not in paths:
                problems.append(f"{f} is not in the package")
        for line in contents.splitlines():
            fields = line.split()
            if fields[5] in ("./usr/sbin/tcpechod", "./usr/bin/tcpecho-probe") and not fields[0].startswith("-rwxr-xr-x"):
                problems.append(f"{fields[5]} has mode {fields[0]}")

        def field(name):
            return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True,
                                  check=True).stdout.strip()
        if field("Version") != meson_version:
            problems.append(f"Version: {field('Version')}, meson says {meson_version}")
        if not re.search(r"(^|, )procps(,|$| )", field("Depends")):
            problems.append(f"Depends has no procps (ExecReload= runs /bin/kill): {field('Depends')}")

        with tempfile.TemporaryDirectory(prefix="tcpecho-deb-control-") as control:
            subprocess.run(["dpkg-deb", "-e", deb, control], check=True)

            def script_text(name):
                path = os.path.join(control, name)
                return open(path).read() if os.path.exists(path) else ""
            conffiles = script_text("conffiles").split()
            print(f"conffiles: {conffiles}")
            if "/etc/tcpechod/tcpechod.toml" not in conffiles:
                problems.append("/etc/tcpechod/tcpechod.toml is not a conffile")
            postinst, prerm, postrm = script_text("postinst"), script_text("prerm"), script_text("postrm")
            if "deb-systemd-helper enable 'tcpechod.socket'" not in postinst:
                problems.append("postinst does not enable tcpechod.socket")
            if not re.search(r"deb-systemd-invoke \$_dh_action 'tcpechod.socket'", postinst):
                problems.append("postinst does not start (or on upgrade restart) tcpechod.socket")
            if "tcpechod.service" in postinst + prerm + postrm:
                problems.append("a maintainer script names tcpechod.service (it must be started by its socket only)")
            if "deb-systemd-invoke stop 'tcpechod.socket'" not in prerm:
                problems.append("prerm does not stop tcpechod.socket on removal")
            if "deb-systemd-helper purge 'tcpechod.socket'" not in postrm:
                problems.append("postrm does not purge tcpechod.socket's enablement state")

        lintian = open(os.path.join(out, "lintian.txt")).read()
        tags = [l for l in lintian.splitlines() if re.match(r"^[EWIPXON]: ", l)]
        print("lintian tags:\n  " + ("\n  ".join(tags) if tags else "(none)"))

    for problem in problems:
        print("FAIL: " + problem)
    if problems:
        return 1
    print("PASS")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "version":
        return check_version(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "build":
        return check_build(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
