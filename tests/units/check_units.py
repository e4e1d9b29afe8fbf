#!/usr/bin/env python3
"""Static checks of the generated systemd units (meson suite 'units').

  check_units.py security UNIT MAX_SCORE
      `systemd-analyze security --offline=true --threshold=MAX_SCORE*10 UNIT` must pass and its
      overall exposure score (printed) must be <= MAX_SCORE.
  check_units.py verify SBINDIR TCPECHOD UNIT...
      `systemd-analyze verify` of the units must be clean: exit 0 and nothing on stdout or
      stderr (unknown keys, bad values and missing executables are only warnings there).

Exit status: 0 pass, 1 fail, 77 skip (systemd-analyze missing).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        print("SKIP: systemd-analyze not found (Debian package 'systemd'; scripts/setup-deps.sh installs it)")
        sys.exit(SKIP)
    return path


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def security(unit, max_score):
    # --threshold is on the x10 scale of the printed score: 5 means 0.5.
    threshold = round(float(max_score) * 10)
    p = run([analyze(), "security", "--offline=true", f"--threshold={threshold}", "--no-pager", unit])
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", p.stdout)
    if m is None:
        print("FAIL: no 'Overall exposure level' line in the output")
        return 1
    score = float(m.group(1))
    print(f"exposure score {score} (limit {max_score}), systemd-analyze exit status {p.returncode}")
    if p.returncode != 0 or score > float(max_score):
        print(f"FAIL: {os.path.basename(unit)} scores {score}, more than {max_score}")
        return 1
    print("PASS")
    return 0


def host_unit_dir():
    for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isfile(os.path.join(d, "sysinit.target")):
            return d
    return None


def verify(sbindir, tcpechod, units):
    tool = analyze()
    host_units = host_unit_dir()
    if host_units is None:
        print("SKIP: no systemd unit directory with sysinit.target on this machine")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="tcpecho-verify-") as root:
        # verify checks that the ExecStart= binaries exist: give it a root with the built
        # daemon at its installed path, this machine's systemd units (sockets.target,
        # sysinit.target, ... which the units depend on) and ours. usrmerge layout, so that
        # the absolute /lib/... symlinks among the copied units resolve inside the root.
        unit_dir = os.path.join(root, "usr/lib/systemd/system")
        shutil.copytree(host_units, unit_dir, symlinks=True)
        os.symlink("usr/lib", os.path.join(root, "lib"))
        dest_sbin = os.path.join(root, sbindir.lstrip("/"))
        os.makedirs(dest_sbin, exist_ok=True)
        shutil.copy2(tcpechod, os.path.join(dest_sbin, "tcpechod"))
        targets = []
        for u in units:
            shutil.copy2(u, os.path.join(unit_dir, os.path.basename(u)))
            targets.append(os.path.join(unit_dir, os.path.basename(u)))
        # --man=no: the man pages named in Documentation= did not exist when this was written
        # (a later issue adds them), and `man` here would not look into this root anyway.
        # tests/system runs verify inside the booted tree, with the man check once this
        # build installs the pages.
        p = run([tool, "verify", "--man=no", f"--root={root}", *targets])
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode != 0 or p.stdout.strip() or p.stderr.strip():
        print(f"FAIL: systemd-analyze verify exit status {p.returncode}, output above must be empty")
        return 1
    print("PASS: systemd-analyze verify is clean for " + ", ".join(os.path.basename(u) for u in units))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "security":
        return security(argv[2], argv[3])
    if len(argv) >= 5 and argv[1] == "verify":
        return verify(argv[2], argv[3], argv[4:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
