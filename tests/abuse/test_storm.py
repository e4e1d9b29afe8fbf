#!/usr/bin/env python3
"""Connection storm: 10,000 connections opened and dropped (half RST, half FIN, a third of them
mid-frame; storm_client.py) against tcpechod in a fresh network namespace, while probe runs
verify every byte. The daemon keeps serving, its fd count is back to the baseline within 2 s
of the storm's end, its log stays short (rate-limited) and it exits cleanly.

Needs root (ip netns add); skips (77) otherwise. The namespace gives the storm its own
ephemeral ports and TIME_WAIT table (a storm on the host's loopback would crowd out other tests') and is deleted on every
exit path: finally, atexit, and SIGTERM/SIGINT/SIGHUP handlers (meson's timeout sends SIGTERM).
"""

import atexit
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

from abuse_common import (SKIP, TCP_MODES, TCPECHOD, AbuseTestCase, Daemon, fd_count, finish_probe, log,
                          start_probe)

HERE = os.path.dirname(os.path.abspath(__file__))
STORM_CONNECTIONS = 10000
STORM_INFLIGHT = 256
FD_RECOVERY_LIMIT_S = 2.0
MAX_PROBES_DURING_STORM = 100


class Namespace:
    """A network namespace of our own, and the processes started in it (ended by PID)."""

    def __init__(self):
        self.name = 'tcpecho-abuse-%d-%s' % (os.getpid(), secrets.token_hex(3))
        self.procs = []
        self.cleanups = []
        self.created = False

    def create(self):
        subprocess.run(['ip', 'netns', 'add', self.name], check=True, timeout=30,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.created = True
        subprocess.run(['ip', '-n', self.name, 'link', 'set', 'lo', 'up'], check=True, timeout=30)

    @property
    def prefix(self):
        return ['ip', 'netns', 'exec', self.name]

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def destroy(self):
        while self.cleanups:
            self.cleanups.pop()()
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        self.procs = []
        if self.created:
            subprocess.run(['ip', 'netns', 'del', self.name], timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.created = False


NS = Namespace()


def on_signal(signum, _frame):
    log('signal %d: deleting namespace %s and exiting' % (signum, NS.name))
    NS.destroy()
    os._exit(128 + signum)


class ConnectionStormTest(AbuseTestCase):
    def test_storm(self):
        NS.create()
        self.addCleanup(NS.destroy)
        listeners = [dict(name=n, mode=m['mode'], **({'frame_size': m['frame_size']} if 'frame_size' in m else {}))
                     for n, m in TCP_MODES.items()]
        d = Daemon(listeners, workers=2, prefix=NS.prefix)
        self.addCleanup(d.cleanup)
        NS.cleanups.append(d.cleanup)  # also on a signal (os._exit skips addCleanup)
        d.start()
        NS.track(d.proc)
        # `ip netns exec` execs the command: the PID we hold is tcpechod's.
        self.assertEqual(os.path.realpath('/proc/%d/exe' % d.pid), os.path.realpath(TCPECHOD))

        def probe(args):
            return finish_probe(NS.track(start_probe(args, prefix=NS.prefix)))

        for name, m in TCP_MODES.items():
            self.assertProbeOk(probe(m['probe'] + ['-c', 2, '-n', 50, d.addr[name]]))
        baseline = self.settled_fd_count(d.pid)
        log('baseline: %d fds' % baseline)

        # Probe runs during the storm, one after the other, until it ends.
        storm_over = threading.Event()
        during = []

        def verify_during():
            modes = list(TCP_MODES.items())
            while not storm_over.is_set() and len(during) < MAX_PROBES_DURING_STORM:
                name, m = modes[len(during) % len(modes)]
                args = ['--mode', m['mode'], '-n', 200, '--timeout', '10s']
                args += ['--frame-size', m['frame_size']] if 'frame_size' in m else ['-s', '1-4K']
                during.append(probe(args + [d.addr[name]]))

        peak = [0]

        def sample_fds():
            while not storm_over.is_set():
                peak[0] = max(peak[0], fd_count(d.pid))
                time.sleep(0.002)

        checker = threading.Thread(target=verify_during, daemon=True)
        checker.start()
        sampler = threading.Thread(target=sample_fds, daemon=True)
        sampler.start()
        targets = ','.join('%s=%s' % (n, d.addr[n]) for n in TCP_MODES)
        client = NS.track(subprocess.Popen(
            NS.prefix + [sys.executable, os.path.join(HERE, 'storm_client.py'), '--targets', targets,
                         '--count', str(STORM_CONNECTIONS), '--inflight', str(STORM_INFLIGHT),
                         '--fixed-size', str(TCP_MODES['fixed']['frame_size']), '--deadline', '60'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        out, err = client.communicate(timeout=90)
        storm_end = time.monotonic()
        storm_over.set()
        self.assertEqual(client.returncode, 0, 'storm client: %s\n%s' % (out, err))
        storm = json.loads(out)
        log('storm: %d connections in %.2f s (%d RST, %d FIN; %d mid-frame, %d whole frame, %d bare), '
            'up to %d at once' % (storm['done'], storm['elapsed_s'], storm['rst'], storm['fin'], storm['mid'],
                                  storm['whole'], storm['bare'], storm['max_inflight']))
        self.assertEqual(storm['done'], STORM_CONNECTIONS, storm)

        # fds back to the baseline within 2 s of the storm's end (the probe still running
        # then holds one connection for its last few milliseconds).
        sampler.join(10)
        at_end = fd_count(d.pid)
        recovered_at = None
        while time.monotonic() - storm_end < FD_RECOVERY_LIMIT_S + 1.0:
            n = fd_count(d.pid)
            if n == baseline:
                recovered_at = time.monotonic() - storm_end
                break
            time.sleep(0.005)
        checker.join(60)
        self.assertFalse(checker.is_alive())
        log('probe runs during the storm: %d, all verified: %s' % (
            len(during), all(r.rc == 0 for r in during)))
        self.assertGreaterEqual(len(during), 1)
        for r in during:
            self.assertProbeOk(r)
        self.assertIsNotNone(recovered_at, 'fd count %d, baseline %d, %.1f s after the storm ended: %s' % (
            fd_count(d.pid), baseline, time.monotonic() - storm_end, sorted(os.listdir('/proc/%d/fd' % d.pid))))
        log('fds: peak %d during the storm, %d when it ended, back to the baseline %d in %.3f s' % (
            peak[0], at_end, baseline, recovered_at))
        self.assertLessEqual(recovered_at, FD_RECOVERY_LIMIT_S)

        # Still serving, every framing; nothing left open; the counters tell the storm's story.
        for name, m in TCP_MODES.items():
            self.assertProbeOk(probe(m['probe'] + ['-c', 2, '-n', 100, d.addr[name]]))
        self.assertEqual(self.settled_fd_count(d.pid), baseline)
        c = d.counters()
        log('daemon: accepted %d, resets %d, errors %d, incomplete frames at EOF %d, frames %d' % (
            c['connections_accepted'], c['connection_resets'], c['connection_errors'], c['incomplete_frames_at_eof'],
            c['frames_echoed']))
        self.assertEqual(c['connections_active'], 0, c)
        self.assertGreaterEqual(c['connections_accepted'], STORM_CONNECTIONS, c)
        self.assertGreater(c['incomplete_frames_at_eof'], 0, c)  # mid-frame + FIN
        self.assertGreater(c['connection_resets'], 0, c)         # RST: counted as resets,
        self.assertEqual(c['connection_errors'], 0, c)           # not as errors

        # The log: rate-limited (far fewer lines than events), with the "suppressed" summary,
        # and nothing at err level.
        text = d.log()
        lines = text.splitlines()
        half_closed = sum('peer half-closed inside a frame' in line for line in lines)
        resets = [line for line in lines if 'connection reset by peer' in line]
        self.assertGreater(len(resets), 0)
        self.assertLess(len(resets), c['connection_resets'])   # rate-limited
        # Each names its peer, although the kernel no longer calls the socket connected.
        self.assertEqual([line for line in resets if 'peer=unknown' in line], [])
        suppressed = sum('suppressed' in line for line in lines)
        log('log: %d lines; %d "peer half-closed inside a frame", %d "suppressed ..."' % (
            len(lines), half_closed, suppressed))
        self.assertGreater(half_closed, 0)
        self.assertLess(half_closed, c['incomplete_frames_at_eof'])
        self.assertLess(len(lines), 1000)
        self.assertEqual([line for line in lines if ': err:' in line], [])

        self.assertEqual(d.stop(), 0, text[-3000:])

    @staticmethod
    def settled_fd_count(pid, timeout=5.0):
        """The fd count once it has not changed for 200 ms."""
        end = time.monotonic() + timeout
        last, since = fd_count(pid), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.02)
            n = fd_count(pid)
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= 0.2:
                break
        return last


def preflight():
    if os.geteuid() != 0:
        print('SKIP: the connection storm needs root to create a network namespace (ip netns add)')
        sys.exit(SKIP)
    if shutil.which('ip') is None:
        print('SKIP: iproute2 (ip) is not installed')
        sys.exit(SKIP)
    probe = subprocess.run(['ip', 'netns', 'add', NS.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
    if probe.returncode != 0:
        print('SKIP: cannot create a network namespace here: %s' % probe.stdout.strip())
        sys.exit(SKIP)
    subprocess.run(['ip', 'netns', 'del', NS.name], timeout=30)


if __name__ == '__main__':
    import unittest
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(NS.destroy)
    preflight()
    unittest.main(verbosity=2)
