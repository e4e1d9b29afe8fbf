"""Shared helpers for the probe tests: run the real tcpecho-probe, start the real tcpechod.

The binaries come from the environment (meson sets them): TCPECHO_PROBE and TCPECHOD.
Every process started here is killed by PID in cleanup, every wait has a time limit.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_GUESS = os.path.join(HERE, '..', '..', 'build')
PROBE = os.environ.get('TCPECHO_PROBE', os.path.join(BUILD_GUESS, 'tools', 'tcpecho-probe'))
TCPECHOD = os.environ.get('TCPECHOD', os.path.join(BUILD_GUESS, 'daemon', 'tcpechod'))

PROBE_TIMEOUT_S = 60      # no single probe run in these tests comes close


class ProbeRun:
    """The outcome of one probe run: exit status, stdout, stderr and (with -J) the JSON."""

    def __init__(self, args, rc, stdout, stderr, doc):
        self.args, self.rc, self.stdout, self.stderr, self.doc = args, rc, stdout, stderr, doc

    def __repr__(self):
        return 'probe %s -> exit %d\nstderr: %s\nstdout: %s' % (
            ' '.join(self.args), self.rc, self.stderr[-2000:], self.stdout[-2000:])

    @property
    def errors(self):
        return self.doc['errors']


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
    return ProbeRun(argv[1:], p.returncode, p.stdout, p.stderr, doc)


class ProbeTestCase(unittest.TestCase):
    maxDiff = None

    def assertOk(self, run):
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(run.doc['result']['status'], 'ok', run)
        self.assertEqual(run.doc['result']['exit_code'], 0, run)
        self.assertEqual(run.doc['errors'], [], run)
        t = run.doc['totals']
        self.assertGreater(t['messages_sent'], 0, run)
        self.assertEqual(t['messages_verified'], t['messages_sent'], run)
        self.assertEqual(t['bytes_verified'], t['bytes_sent'], run)
        for c in run.doc['connections']:
            self.assertIsNone(c['error'], run)
            self.assertEqual(c['bytes_verified'], c['bytes_sent'], run)

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


def kill_process(proc):
    """Cleanup for a Popen: kill it by PID if it still runs, and reap it."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def stop_process(proc, timeout=15.0):
    """SIGTERM to `proc` (a Popen); returns its exit status, or None if it had to be killed."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc)
        return None


class Daemon:
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
        for lst in self.listeners:
            lines += ['[[listen]]',
                      'name = "%s"' % lst['name'],
                      'address = "%s"' % lst.get('address', '127.0.0.1'),
                      'port = 0']
            if 'proto' in lst:
                lines.append('proto = "%s"' % lst['proto'])
            if 'mode' in lst:
                lines.append('mode = "%s"' % lst['mode'])
            if 'frame_size' in lst:
                lines.append('frame_size = %d' % lst['frame_size'])
            lines += lst.get('extra', [])
        return '\n'.join(lines) + '\n'

    def start(self, timeout=15.0):
        conf = os.path.join(self._tmp.name, 'tcpechod.toml')
        with open(conf, 'w') as f:
            f.write(self.config_text())
        self._stderr = open(self.stderr_path, 'w+')
        self.proc = subprocess.Popen([TCPECHOD, '-c', conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if 'ready:' in log:
                for m in self.LISTEN_RE.finditer(log):
                    addr = m.group(2)
                    self.addresses[m.group(1)] = addr
                    self.ports[m.group(1)] = int(addr.rsplit(':', 1)[1])
                missing = [lst['name'] for lst in self.listeners
                           if lst['name'] not in self.ports]
                if missing:
                    raise AssertionError('no "listening" line for %s in:\n%s' % (missing, log))
                return self
            if self.proc.poll() is not None:
                raise AssertionError('tcpechod exited with %d before ready:\n%s'
                                     % (self.proc.returncode, log))
            time.sleep(0.02)
        raise AssertionError('tcpechod not ready within %.0f s:\n%s' % (timeout, self.log()))

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

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
