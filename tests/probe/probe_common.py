"""Shared helpers for the probe tests: run the real tcpecho-probe, start the real tcpechod.

The binaries come from the environment (meson sets them): TCPECHO_PROBE and TCPECHOD.
Every process started here is killed by PID in cleanup, every wait has a time limit.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'pylib'))
from tcpecho_testlib import (DaemonLog, ProbeRun, assert_all_verified, kill_process, listen_tables,  # noqa: E402,F401
                             stop_process)
BUILD_GUESS = os.path.join(HERE, '..', '..', 'build')
PROBE = os.environ.get('TCPECHO_PROBE', os.path.join(BUILD_GUESS, 'tools', 'tcpecho-probe'))
TCPECHOD = os.environ.get('TCPECHOD', os.path.join(BUILD_GUESS, 'daemon', 'tcpechod'))

PROBE_TIMEOUT_S = 60      # no single probe run in these tests comes close


def run_probe(args, json_output=True, timeout=PROBE_TIMEOUT_S):
    """Run tcpecho-probe with args (plus -J unless json_output is False)."""
    argv = [PROBE] + (['-J'] if json_output else []) + [str(a) for a in args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, text=True)
    doc = None
    if json_output and p.returncode != 2:
        # One JSON document, nothing before or after it (json.loads rejects extra data).
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError('probe -J output is not one JSON document (%s): %r\n'
                                 'stderr: %s' % (e, p.stdout[:2000], p.stderr[-2000:]))
    return ProbeRun(argv, p.returncode, p.stdout, p.stderr, doc)


class ProbeTestCase(unittest.TestCase):
    maxDiff = None

    def assertOk(self, run):
        assert_all_verified(self, run)

    def assertFailedWith(self, run, exit_code, kind, offset=None, connection=0):
        """The run failed with exit_code; the error of `connection` has `kind` (and
        `offset` if given). Returns that error."""
        self.assertEqual(run.rc, exit_code, run)
        self.assertEqual(run.doc['result']['status'], 'failed', run)
        self.assertEqual(run.doc['result']['exit_code'], exit_code, run)
        errs = [e for e in run.doc['errors'] if e['connection'] == connection]
        self.assertEqual(len(errs), 1, run)
        err = errs[0]
        self.assertEqual(err['kind'], kind, run)
        self.assertEqual(err['exit_code'], exit_code, run)
        if offset is not None:
            self.assertEqual(err['offset'], offset, run)
        self.assertEqual(run.doc['connections'][connection]['error'], kind, run)
        return err


def hex_bytes(hexdump):
    """From 'a1 b2 [c3] d4' return b'\\xa1\\xb2\\xc3\\xd4' and the marker's index."""
    tokens = hexdump.split()
    marker = [i for i, t in enumerate(tokens) if t.startswith('[')]
    data = bytes(int(t.strip('[]'), 16) for t in tokens)
    return data, (marker[0] if marker else None)


class Daemon(DaemonLog):
    """The real tcpechod on port-0 listeners; `ports[name]` after start()."""

    LISTEN_RE = re.compile(r'listening name=(\S+) .*address=(\S+)')

    def __init__(self, listeners, workers=2, extra_config=''):
        # listeners: list of dicts with name, and optional mode, proto, address, frame_size,
        # and 'extra': more lines for that [[listen]] table (e.g. 'udp_rate_limit = 0').
        self.listeners = listeners
        self.workers = workers
        self.extra_config = extra_config
        self.proc = None
        self.ports = {}
        self.addresses = {}
        self._tmp = tempfile.TemporaryDirectory(prefix='tcpecho-probe-test-')
        self.stderr_path = os.path.join(self._tmp.name, 'tcpechod.stderr')

    def config_text(self):
        lines = ['workers = %d' % self.workers, 'log_level = "info"', self.extra_config]
        return '\n'.join(lines + listen_tables(self.listeners)) + '\n'

    def start(self, timeout=15.0):
        conf = os.path.join(self._tmp.name, 'tcpechod.toml')
        with open(conf, 'w') as f:
            f.write(self.config_text())
        self._stderr = open(self.stderr_path, 'w+')
        self.proc = subprocess.Popen([TCPECHOD, '-c', conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        log = self.wait_log('ready:', timeout=timeout)
        for m in self.LISTEN_RE.finditer(log):
            addr = m.group(2)
            self.addresses[m.group(1)] = addr
            self.ports[m.group(1)] = int(addr.rsplit(':', 1)[1])
        missing = [lst['name'] for lst in self.listeners if lst['name'] not in self.ports]
        if missing:
            raise AssertionError('no "listening" line for %s in:\n%s' % (missing, log))
        return self

    def target(self, name):
        return self.addresses[name]

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        return stop_process(self.proc, timeout)

    def kill(self):
        """Cleanup: idempotent, safe after stop()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if getattr(self, '_stderr', None) is not None:
            self._stderr.close()
            self._stderr = None
        self._tmp.cleanup()


def ipv6_loopback_works():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(('::1', 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    unittest.main(verbosity=2)
