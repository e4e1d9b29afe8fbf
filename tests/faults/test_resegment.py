#!/usr/bin/env python3
"""1-byte re-segmentation: byte-proxy, in the daemon's namespace, forwards the probe's stream
to tcpechod one byte per send() (TCP_NODELAY, a 100 us pause after each), so each frame
reaches the daemon in as many pieces as it has bytes. In fixed, length and line mode the
probe must still get every frame back whole (it verifies every byte; the daemon counts
exactly one echoed frame per message), and the daemon must have done thousands of reads.

Reads are counted with `strace -c -f -e trace=recvfrom` attached to the daemon for the run
(tcpechod's counters have no read count), as calls minus failed calls (EAGAIN ends each
edge-triggered read loop).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab as F  # noqa: E402

PAUSE_US = 100
PAUSE_EVERY = 1
MESSAGES = 40

CASES = {
    'fixed': ({'name': 'fixed', 'mode': 'fixed', 'frame_size': 100},
              ['--mode', 'fixed', '--frame-size', 100, '-s', 100, '-c', 2]),
    'length': ({'name': 'length', 'mode': 'length'},
               ['--mode', 'length', '-s', '1-200', '-c', 2]),
    'line': ({'name': 'line', 'mode': 'line'},
             ['--mode', 'line', '-s', '1-200', '-c', 2]),
}


def requirements():
    if not os.access(F.BYTE_PROXY, os.X_OK):
        return 'byte-proxy not built'
    if shutil.which('strace') is None:
        return 'strace not found (counts the daemon\'s reads; scripts/setup-deps.sh installs it)'
    return None


class Strace:
    """strace -c on a running process: counts its recvfrom() calls until stop()."""

    def __init__(self, pid):
        self.out = tempfile.NamedTemporaryFile(prefix='tcpecho-faults-strace-', suffix='.txt')
        self.proc = subprocess.Popen(['strace', '-f', '-c', '-e', 'trace=recvfrom', '-o',
                                      self.out.name, '-p', str(pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        F.REGISTRY.procs.append(self.proc)
        # It prints "Process N attached" for each thread once it is in place.
        line = self.proc.stderr.readline()
        if 'attached' not in line:
            raise AssertionError('strace did not attach: %r' % line)

    def stop(self):
        """{'calls': N, 'errors': N} for recvfrom."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=15)
        with open(self.out.name) as f:
            text = f.read()
        self.out.close()
        # % time  seconds  usecs/call  calls  errors  syscall
        m = re.search(r'^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*recvfrom\s*$', text, re.M)
        if not m:
            raise AssertionError('no recvfrom line in strace -c output:\n%s' % text)
        return {'calls': int(m.group(1)), 'errors': int(m.group(2) or 0)}


class OneByteSegments(F.FaultCase):

    def start_proxy(self, port):
        p = self.lab.spawn('srv', F.BYTE_PROXY, self.lab.addr['srv'], '127.0.0.1', port,
                           PAUSE_US, PAUSE_EVERY, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline().split()
        self.assertEqual(line[:1], ['listening'], line)
        return p, '%s:%s' % (self.lab.addr['srv'], line[1])

    def run_mode(self, mode):
        listener, args = CASES[mode]
        d = self.start_daemon([listener])
        proxy, target = self.start_proxy(d.port(listener['name']))
        # A short warm-up through the proxy (see faultlab.RSS_TOLERANCE_KIB).
        self.assertVerified(F.probe(self.lab, 'cli', args + ['-n', 5, '--seed', 1, target]))
        base = d.idle_resources()
        frames0 = d.counters()['frames_echoed']
        tracer = Strace(d.pid)
        run = F.probe(self.lab, 'cli', args + ['-n', MESSAGES, target])
        reads = tracer.stop()
        self.assertVerified(run)
        frames = d.counters()['frames_echoed'] - frames0
        data_reads = reads['calls'] - reads['errors']
        upstream = run.doc['totals']['bytes_sent']   # what the daemon had to read
        self.record('bytes', upstream)
        self.record('frames_echoed', frames)
        self.record('daemon_reads', data_reads)
        self.record('bytes_per_read', '%.2f' % (upstream / max(1, data_reads)))
        self.assertEqual(frames, run.doc['totals']['messages_sent'])
        self.assertGreater(data_reads, 1000, reads)
        # Nearly every read got a byte or two: the frames really arrived in pieces.
        self.assertLess(upstream / data_reads, 4.0, reads)
        self.assertBackToBaseline(d, base)
        proxy.kill()
        proxy.wait(10)
        self.assertCleanExit(d)

    def test_fixed_frames(self):
        self.run_mode('fixed')

    def test_length_frames(self):
        self.run_mode('length')

    def test_line_frames(self):
        self.run_mode('line')


if __name__ == '__main__':
    F.main(extra_requirements=requirements)
