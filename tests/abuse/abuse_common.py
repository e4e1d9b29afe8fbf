"""Shared helpers for the abuse tests: start the real tcpechod (optionally under the LD_PRELOAD
I/O shim, optionally inside a network namespace), run the real tcpecho-probe, read counters.

Binaries come from the environment (meson sets them): TCPECHOD, TCPECHO_PROBE, ABUSE_IO_SHIM.
Every process started here is ended by
PID in cleanup, every wait has a time limit.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'pylib'))
from tcpecho_testlib import DaemonLog, assert_all_verified, kill_process, listen_tables, stop_process  # noqa: E402
import tcpecho_testlib  # noqa: E402
BUILD_GUESS = os.path.join(HERE, '..', '..', 'build')
TCPECHOD = os.environ.get('TCPECHOD', os.path.join(BUILD_GUESS, 'daemon', 'tcpechod'))
PROBE = os.environ.get('TCPECHO_PROBE', os.path.join(BUILD_GUESS, 'tools', 'tcpecho-probe'))
SHIM = os.environ.get('ABUSE_IO_SHIM', os.path.join(BUILD_GUESS, 'tests', 'abuse', 'abuse-io-shim.so'))

SKIP = 77  # meson: the test was skipped

# The four TCP framings, with what the probe needs for each.
TCP_MODES = {
    'raw': {'mode': 'raw', 'probe': ['--mode', 'raw', '-s', '1-64K']},
    'fixed': {'mode': 'fixed', 'frame_size': 3000, 'probe': ['--mode', 'fixed', '--frame-size', '3000']},
    'length': {'mode': 'length', 'probe': ['--mode', 'length', '-s', '0-64K']},
    'line': {'mode': 'line', 'probe': ['--mode', 'line', '-s', '0-16K']},
}


def log(msg):
    """Progress for the meson test log (stderr is shown with --print-errorlogs)."""
    sys.stderr.write('[%s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def asan_runtime():
    """Path of libasan if tcpechod links it, else None. With LD_PRELOAD, ASan insists on being
    the first library loaded ("ASan runtime does not come first"): it is preloaded ahead of
    the shim, so its interceptors call the shim, which calls libc."""
    try:
        out = subprocess.run(['ldd', TCPECHOD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'(libasan\.so\S*) => (\S+)', out)
    return m.group(2) if m else None


def shim_env(report_path, seed, eintr=0.0, short=0.0, econnaborted=0.0, eagain=0.0, eagain_max=None):
    """Environment that loads the I/O shim into tcpechod with these injection probabilities."""
    if not os.path.isfile(SHIM):
        raise AssertionError('the I/O shim %s does not exist (set ABUSE_IO_SHIM; meson does)' % SHIM)
    preload = [SHIM]
    runtime = asan_runtime()
    if runtime:
        preload.insert(0, runtime)
    env = {
        'LD_PRELOAD': ':'.join(preload),
        'ABUSE_SHIM_REPORT': report_path,
        'ABUSE_SHIM_SEED': str(seed),
        'ABUSE_SHIM_EINTR': repr(eintr),
        'ABUSE_SHIM_SHORT': repr(short),
        'ABUSE_SHIM_ECONNABORTED': repr(econnaborted),
        'ABUSE_SHIM_EAGAIN': repr(eagain),
    }
    if eagain_max is not None:
        env['ABUSE_SHIM_EAGAIN_MAX'] = str(eagain_max)
    return env


def read_shim_report(path):
    """{counter: value} from the file the shim writes when tcpechod exits."""
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def start_probe(args, prefix=()):
    """Starts tcpecho-probe -J (under `prefix`, e.g. ip netns exec); returns the Popen."""
    argv = list(prefix) + [PROBE, '-J', '--no-progress'] + [str(a) for a in args]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.argv = argv
    return p


def finish_probe(p, timeout=90):
    """Waits for a probe started by start_probe (killing it by PID after `timeout`)."""
    return tcpecho_testlib.finish_probe(p, p.argv, timeout)


def run_probe(args, prefix=(), timeout=90):
    return finish_probe(start_probe(args, prefix), timeout)


class AbuseTestCase(unittest.TestCase):
    maxDiff = None

    def assertProbeOk(self, run):
        """Exit 0 and every byte verified (TCP)."""
        assert_all_verified(self, run)

    def assertUdpIntact(self, run, max_loss_allowed=True):
        """No corrupted or duplicated datagram; something came back."""
        self.assertIsNotNone(run.doc, run)
        u = run.doc['udp']
        self.assertEqual(u['corrupted'], 0, run)
        self.assertEqual(u['duplicated'], 0, run)
        self.assertGreater(u['received'], 0, run)
        if not max_loss_allowed:
            self.assertEqual(run.rc, 0, run)
            self.assertEqual(u['lost'], 0, run)


class Daemon(DaemonLog):
    """The real tcpechod on a config file, listeners on port 0; `addr[name]` after start().

    listeners: list of dicts with name and optional proto, mode, frame_size, extra (lines).
    prefix: argv before tcpechod (e.g. ['ip', 'netns', 'exec', NS]; it execs, same PID).
    """

    LISTEN_RE = re.compile(r'(?:listening|reload: serving) name=(\S+) proto=(\S+) .*?address=(\S+)')

    def __init__(self, listeners, workers=2, extra_config='', env=None, prefix=()):
        self.listeners = listeners
        self.workers = workers
        self.extra_config = extra_config
        self.env = env or {}
        self.prefix = list(prefix)
        self.tmp = tempfile.TemporaryDirectory(prefix='tcpecho-abuse-')
        self.config_path = os.path.join(self.tmp.name, 'tcpechod.toml')
        self.stderr_path = os.path.join(self.tmp.name, 'tcpechod.stderr')
        self.proc = None
        self._stderr = None
        self.addr = {}

    def config_text(self):
        lines = ['workers = %d' % self.workers, 'log_level = "info"', self.extra_config]
        return '\n'.join(lines + listen_tables(self.listeners)) + '\n'

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=30.0):
        with open(self.config_path, 'w') as f:
            f.write(self.config_text())
        self._stderr = open(self.stderr_path, 'w+')
        env = dict(os.environ)
        env.update(self.env)
        self.proc = subprocess.Popen(self.prefix + [TCPECHOD, '-c', self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=env)
        self.wait_log('ready:', timeout=timeout)
        for m in self.LISTEN_RE.finditer(self.log()):
            self.addr[m.group(1) if m.group(2) == 'tcp' else m.group(1) + '/udp'] = m.group(3)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30.0):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        return stop_process(self.proc, timeout)

    def kill(self):
        if self.proc is not None:
            kill_process(self.proc)

    def cleanup(self):
        """Idempotent; safe after stop()."""
        self.kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.tmp.cleanup()


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def main():
    unittest.main(verbosity=2)
