#!/usr/bin/env python3
"""`meson install --destdir` puts every file where it belongs.

The expected places are worked out here from the build's own options (meson introspect) and
from pkg-config, independently of the meson.build files that install them:
  PREFIX/SBINDIR/tcpechod, PREFIX/BINDIR/tcpecho-probe,
  PREFIX/SYSCONFDIR/tcpechod/tcpechod.toml (SYSCONFDIR is /etc for prefix /usr),
  PREFIX/MANDIR/man{8,1,5}/..., bash-completion's completionsdir for PREFIX/DATADIR (else
  PREFIX/DATADIR/bash-completion/completions), systemd's systemdsystemunitdir (else
  PREFIX/lib/systemd/system).
The installed configuration must equal etc/tcpechod.toml and pass the installed daemon's
--check-config; the installed man pages must name the installed configuration file.
usage: install_check.py MESON BUILD_DIR SOURCE_DIR
"""
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile


def pkg_variable(package, variable, defines=()):
    if shutil.which("pkg-config") is None:
        return None
    cmd = ["pkg-config", f"--variable={variable}"]
    for name, value in defines:
        cmd.append(f"--define-variable={name}={value}")
    r = subprocess.run(cmd + [package], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def main():
    meson, build, source = sys.argv[1:4]
    meson_cmd = meson.split()
    options = json.loads(subprocess.run(meson_cmd + ["introspect", "--buildoptions", build],
                                        capture_output=True, text=True, check=True).stdout)
    opt = {o["name"]: o["value"] for o in options}
    prefix = opt["prefix"]

    def under_prefix(*parts):
        return os.path.join(prefix, *parts)  # an absolute part (sysconfdir /etc) wins

    datadir = under_prefix(opt["datadir"])
    completions = pkg_variable("bash-completion", "completionsdir", [("datadir", datadir)]) or \
        os.path.join(datadir, "bash-completion", "completions")
    units = pkg_variable("systemd", "systemdsystemunitdir") or under_prefix("lib", "systemd", "system")
    mandir = under_prefix(opt["mandir"])
    config = under_prefix(opt["sysconfdir"], "tcpechod", "tcpechod.toml")
    expected = {
        "daemon": under_prefix(opt["sbindir"], "tcpechod"),
        "probe": under_prefix(opt["bindir"], "tcpecho-probe"),
        "config": config,
        "man8": os.path.join(mandir, "man8", "tcpechod.8"),
        "man1": os.path.join(mandir, "man1", "tcpecho-probe.1"),
        "man5": os.path.join(mandir, "man5", "tcpechod.toml.5"),
        "completion-probe": os.path.join(completions, "tcpecho-probe"),
        "completion-daemon": os.path.join(completions, "tcpechod"),
        "service": os.path.join(units, "tcpechod.service"),
        "socket": os.path.join(units, "tcpechod.socket"),
        "metrics-socket": os.path.join(units, "tcpechod-metrics.socket"),
    }
    if prefix == "/usr":  # Debian's layout, spelled out
        assert config == "/etc/tcpechod/tcpechod.toml", config
        assert expected["daemon"] == "/usr/sbin/tcpechod", expected["daemon"]

    problems = []
    with tempfile.TemporaryDirectory() as dest:
        r = subprocess.run(meson_cmd + ["install", "--no-rebuild", "--quiet", "-C", build, "--destdir", dest],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            print(f"FAIL: meson install exited {r.returncode}")
            return 1
        installed = sorted(os.path.relpath(os.path.join(d, f), dest)
                           for d, _, files in os.walk(dest) for f in files)
        print("installed:\n  /" + "\n  /".join(installed))

        def at(path):
            return os.path.join(dest, path.lstrip("/"))

        for what, path in expected.items():
            if not os.path.isfile(at(path)):
                problems.append(f"{what}: {path} not installed")
        for what in ("daemon", "probe"):
            if os.path.isfile(at(expected[what])) and not os.access(at(expected[what]), os.X_OK):
                problems.append(f"{expected[what]} is not executable")
        if os.path.isfile(at(config)):
            if not filecmp.cmp(at(config), os.path.join(source, "etc", "tcpechod.toml"), shallow=False):
                problems.append(f"{config} differs from etc/tcpechod.toml")
            if os.path.isfile(at(expected["daemon"])):
                r = subprocess.run([at(expected["daemon"]), "--check-config", "--config", at(config)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    problems.append(f"installed tcpechod --check-config on the installed file: exit "
                                    f"{r.returncode}: {r.stderr.strip()}")
        for what in ("man8", "man5"):
            if os.path.isfile(at(expected[what])):
                text = open(at(expected[what]), encoding="utf-8").read()
                if config not in text or "@" + "TCPECHOD_CONFIG@" in text:
                    problems.append(f"{expected[what]} does not name {config}")
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
