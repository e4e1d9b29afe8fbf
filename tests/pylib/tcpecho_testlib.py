"""What every Python test suite needs from a running tcpechod and from tcpecho-probe's report.

Shared by tests/probe, tests/udp, tests/systemd, tests/abuse, tests/faults and tests/soak, each
of which starts tcpechod its own way (plain, under an LD_PRELOAD shim, in a network namespace,
under systemd-socket-activate) but reads it the same way: its stderr log, its counters
(SIGUSR1), its exit. Import with the directory on sys.path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'pylib'))
"""

import json
import re
import signal
import subprocess
import time


def listen_tables(listeners, default_address='127.0.0.1'):
    """Config lines for [[listen]] tables on port 0 (unless given). Each listener is a dict:
    name, and optional address, port, proto (default tcp), mode, frame_size, and 'extra' (more
    lines for that table, e.g. 'udp_rate_limit = 0')."""
    lines = []
    for lst in listeners:
        lines += ['[[listen]]', 'name = "%s"' % lst['name'],
                  'address = "%s"' % lst.get('address', default_address),
                  'port = %d' % lst.get('port', 0),
                  'proto = "%s"' % lst.get('proto', 'tcp')]
        if 'mode' in lst:
            lines.append('mode = "%s"' % lst['mode'])
        if 'frame_size' in lst:
            lines.append('frame_size = %d' % lst['frame_size'])
        lines += lst.get('extra', [])
    return lines


def parse_counters(text):
    """'a=1 b=2 workers_active=3,4' -> {'a': 1, 'b': 2, 'workers_active': [3, 4]}"""
    def value(v):
        return [int(x) for x in v.split(',')] if ',' in v else int(v)
    return {k: value(v) for k, v in (kv.split('=', 1) for kv in text.split() if '=' in kv)}


class DaemonLog:
    """Reading a tcpechod this object started: needs `self.proc` (its Popen; the PID is
    tcpechod's own, also behind `ip netns exec`, which execs) and `self.stderr_path` (the file
    its stderr goes to)."""

    # Whole lines only: a line still being written has no newline yet.
    COUNTERS_RE = re.compile(r'notice: counters (.*)\n')
    FINAL_COUNTERS_RE = re.compile(r'notice: stopped: counters (.*)\n')

    def log(self):
        with open(self.stderr_path, errors='replace') as f:
            return f.read()

    def wait_log(self, text, count=1, timeout=15.0):
        """Waits until `text` is in the log `count` times; returns the log. Fails at once if
        tcpechod exits meanwhile."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            log = self.log()
            if log.count(text) >= count:
                return log
            if self.proc.poll() is not None:
                raise AssertionError('tcpechod exited with %d while waiting for %r:\n%s'
                                     % (self.proc.returncode, text, log[-5000:]))
            time.sleep(0.02)
        raise AssertionError('%d x %r not in the tcpechod log within %.0f s:\n%s'
                             % (count, text, timeout, self.log()[-5000:]))

    def counters(self, timeout=10.0):
        """SIGUSR1, then the counters line it logs, as {name: int}."""
        before = len(self.COUNTERS_RE.findall(self.log()))
        self.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            lines = self.COUNTERS_RE.findall(self.log())
            if len(lines) > before:
                return parse_counters(lines[-1])
            if self.proc.poll() is not None:
                raise AssertionError('tcpechod exited with %d:\n%s' % (self.proc.returncode, self.log()[-5000:]))
            time.sleep(0.02)
        raise AssertionError('no counters line within %.0f s after SIGUSR1:\n%s' % (timeout, self.log()[-3000:]))

    def final_counters(self):
        """The counters of the 'stopped:' line it logs at exit, or None."""
        lines = self.FINAL_COUNTERS_RE.findall(self.log())
        return parse_counters(lines[-1]) if lines else None


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


class ProbeRun:
    """One tcpecho-probe run: its argv, exit status, stdout, stderr and -J document (or None)."""

    def __init__(self, argv, rc, stdout, stderr, doc):
        self.argv, self.rc, self.stdout, self.stderr, self.doc = argv, rc, stdout, stderr, doc

    def __repr__(self):
        return 'probe %s -> exit %d\nstderr: %s\nstdout: %s' % (
            ' '.join(self.argv), self.rc, self.stderr[-2000:], self.stdout[-3000:])

    @property
    def errors(self):
        return self.doc['errors']

    def tcp_info_sum(self, key):
        return sum((c['tcp_info'] or {}).get(key, 0) for c in self.doc['connections'])


def parse_probe_json(stdout):
    """The -J document, or None if stdout is not one JSON document (a usage error, exit 2)."""
    try:
        return json.loads(stdout)
    except ValueError:
        return None


def finish_probe(proc, argv, timeout=90):
    """Waits for a probe started with stdout and stderr piped (text); kills it by PID after
    `timeout` (its run then reports that, and fails the caller's checks)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        err += '\n(killed by the test after %d s)' % timeout
    return ProbeRun(argv, proc.returncode, out, err, parse_probe_json(out))


def assert_all_verified(tc, run):
    """A TCP run of tcpecho-probe -J (run.rc, run.doc) that passed: exit 0, status ok, no
    errors, and every byte sent came back verified on every connection. `tc`: the TestCase."""
    tc.assertIsNotNone(run.doc, run)
    tc.assertEqual(run.rc, 0, run)
    tc.assertEqual(run.doc['result']['status'], 'ok', run)
    tc.assertEqual(run.doc['result']['exit_code'], 0, run)
    tc.assertEqual(run.doc['errors'], [], run)
    t = run.doc['totals']
    tc.assertGreater(t['messages_sent'], 0, run)
    tc.assertEqual(t['messages_verified'], t['messages_sent'], run)
    tc.assertEqual(t['bytes_verified'], t['bytes_sent'], run)
    for c in run.doc['connections']:
        tc.assertIsNone(c['error'], run)
        tc.assertEqual(c['bytes_verified'], c['bytes_sent'], run)
