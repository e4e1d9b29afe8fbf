#!/usr/bin/env python3
"""Soak: a sanitizer build of tcpechod under 200 mixed-mode connections and 1% loss each way.

tcpechod (ASan + UBSan) runs in one network namespace, tcpecho-probe processes in another
(veth, offloads off, nft `numgen random mod 100 < 1 drop` on both input hooks). The mix:

    raw pingpong 50, fixed 40, length 40, line 40, raw stream 10 (TCP, 180 connections)
    UDP 20 flows                                            (200 in all)

Each group runs its probe in segments (default 60 s), so every connection is closed and
opened again each segment (churn, not just steady state). Every sample interval (10 s) the
daemon's RSS, fd count and counters (SIGUSR1) go to samples.csv. At the end: every probe run
verified (UDP: within --max-loss), RSS and fds plateau (< 5% growth: the max of the last
third of the post-warm-up samples vs the max of the first third), SIGTERM gives exit 0 (LSan
runs at exit: a leak makes it non-zero) and tcpechod's stderr has no sanitizer report.

    tests/soak/run.sh [--duration S] [--out DIR]          (builds build-soak, then runs this)
    tests/soak/soak.py --tcpechod B/daemon/tcpechod --probe B/tools/tcpecho-probe [...]

Needs root (namespaces). Exit 0 on success, 1 on a failed check, 77 when it cannot run.
"""

import argparse
import csv
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'faults'))
import faultlab as F  # noqa: E402

LOSS_PERCENT = 1
GROWTH_LIMIT = 0.05

# name, listener, probe arguments (without target and duration)
GROUPS = [
    ('raw', {'name': 'raw', 'mode': 'raw'},
     ['-c', 50, '-s', '1-4K', '--rate', 500]),
    ('fixed', {'name': 'fixed', 'mode': 'fixed', 'frame_size': 512},
     ['-c', 40, '--mode', 'fixed', '--frame-size', 512, '-s', 512, '--rate', 400]),
    ('length', {'name': 'length', 'mode': 'length'},
     ['-c', 40, '--mode', 'length', '-s', '0-16K', '--rate', 400]),
    ('line', {'name': 'line', 'mode': 'line'},
     ['-c', 40, '--mode', 'line', '-s', '1-2K', '--rate', 400]),
    ('stream', {'name': 'raw', 'mode': 'raw'},
     ['-c', 10, '--workload', 'stream', '--window', '128K', '-s', '1-64K', '--rate', 200]),
    ('udp', {'name': 'udp', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']},
     ['--udp', '-c', 20, '-s', '1-1400', '--rate', 1000, '--timeout', '1s', '--max-loss', '10']),
]


class Group(threading.Thread):
    """Runs one probe group in segments until `end` (monotonic); keeps every run's outcome."""

    def __init__(self, lab, name, args, target, end, segment_s, timeout_s):
        super().__init__(name='soak-' + name, daemon=True)
        self.lab, self.gname, self.args, self.target = lab, name, args, target
        self.end, self.segment_s, self.timeout_s = end, segment_s, timeout_s
        self.runs = []      # (rc, summary)
        self.failures = []  # repr of failed runs

    def run(self):
        while not STOP.is_set():
            left = self.end - time.monotonic()
            if left < 2:
                break
            seconds = min(self.segment_s, left)
            try:
                r = F.probe(self.lab, 'cli', self.args + ['-t', '%.1fs' % seconds, self.target],
                            timeout=seconds + self.timeout_s)
            except AssertionError as e:   # did not finish in time
                self.failures.append(str(e))
                continue
            if self.gname == 'udp':
                u = (r.doc or {}).get('udp', {})
                summary = {'sent': u.get('sent'), 'lost': u.get('lost'), 'corrupted': u.get('corrupted')}
                ok = r.rc == 0 and u.get('corrupted') == 0
            else:
                t = (r.doc or {}).get('totals', {})
                summary = {'messages': t.get('messages_verified'), 'bytes': t.get('bytes_verified')}
                ok = r.rc == 0 and r.doc is not None and r.doc['errors'] == []
            self.runs.append((r.rc, summary))
            if not ok:
                self.failures.append(repr(r))


STOP = threading.Event()


def plateau(values, warmup_index):
    """(first third max, last third max, growth) over values[warmup_index:]."""
    tail = values[warmup_index:]
    if len(tail) < 3:
        return None
    third = max(1, len(tail) // 3)
    first, last = max(tail[:third]), max(tail[-third:])
    return first, last, (last - first) / first if first else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tcpechod', required=True)
    ap.add_argument('--probe', required=True)
    ap.add_argument('--duration', type=float, default=600)
    ap.add_argument('--warmup', type=float, default=None, help='default: min(120, duration/5)')
    ap.add_argument('--interval', type=float, default=10)
    ap.add_argument('--segment', type=float, default=60)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--out', default='soak-out')
    opt = ap.parse_args()
    warmup = opt.warmup if opt.warmup is not None else min(120.0, opt.duration / 5)
    F.TCPECHOD, F.PROBE = os.path.abspath(opt.tcpechod), os.path.abspath(opt.probe)
    reason = F.requirements()
    if reason:
        print('SKIP: soak: %s' % reason)
        return F.SKIP
    os.makedirs(opt.out, exist_ok=True)

    lab = F.Lab()
    try:
        return soak(lab, opt, warmup)
    finally:
        STOP.set()
        F.REGISTRY.cleanup()
        left = [n for n in F.list_netns() if n.startswith(F.NS_PREFIX)]
        if left:
            print('leftover namespaces: %s' % left)


def soak(lab, opt, warmup):
    listeners, seen = [], set()
    for _, lst, _ in GROUPS:
        if lst['name'] not in seen:
            seen.add(lst['name'])
            listeners.append(lst)
    # A quarantine of 32 MiB (ASan's default is 256 MiB) still catches a use of memory freed
    # recently, and lets RSS level off within minutes: it is part of what is measured.
    env = {'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=1:quarantine_size_mb=32',
           'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1'}
    d = F.Daemon(lab, 'srv', listeners, workers=opt.workers, env=env,
                 limits='idle_timeout = 60')
    print('tcpechod pid %d (%s), sanitized: %s' % (d.pid, F.TCPECHOD, d.sanitized()), flush=True)
    for role in ('srv', 'cli'):
        lab.nft(role, F.loss_ruleset(LOSS_PERCENT))

    start = time.monotonic()
    end = start + opt.duration
    groups = []
    for gname, lst, args in GROUPS:
        proto = lst.get('proto', 'tcp')
        g = Group(lab, gname, [str(a) for a in args], d.target(lst['name'], proto), end,
                  opt.segment, 60)
        g.start()
        groups.append(g)

    samples = []
    csv_path = os.path.join(opt.out, 'samples.csv')
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['t_s', 'rss_kib', 'fds', 'connections_active', 'connections_accepted',
                    'bytes_received', 'udp_datagrams_echoed', 'connection_errors'])
        next_t = start
        while time.monotonic() < end:
            next_t += opt.interval
            time.sleep(max(0.0, next_t - time.monotonic()))
            if d.proc.poll() is not None:
                print('tcpechod exited early with %d' % d.proc.returncode)
                break
            c = d.counters()
            row = [round(time.monotonic() - start, 1), d.rss_kib(), d.fd_count(),
                   c['connections_active'], c['connections_accepted'], c['bytes_received'],
                   c['udp_datagrams_echoed'], c['connection_errors']]
            w.writerow(row)
            f.flush()
            samples.append(row)
            print('t=%6.1fs rss=%d KiB fds=%d active=%d accepted=%d' % tuple(row[:5]), flush=True)

    for g in groups:
        g.join(opt.segment + 90)
    drops = {role: sum(lab.nft_counters(role).values()) for role in ('srv', 'cli')}
    final = d.counters()
    rc = d.stop(timeout=30)
    log = d.log()
    with open(os.path.join(opt.out, 'tcpechod.stderr'), 'w') as f:
        f.write(log)

    failures = []
    if rc != 0:
        failures.append('tcpechod exit status %r (LSan/ASan abort or unclean stop)' % rc)
    m = F.SANITIZER_RE.search(log)
    if m:
        failures.append('sanitizer report in tcpechod stderr: %s' % log[m.start():m.start() + 2000])
    for g in groups:
        if g.is_alive():
            failures.append('%s: probe group still running' % g.gname)
        failures += ['%s: %s' % (g.gname, x[:3000]) for x in g.failures]
        if not g.runs:
            failures.append('%s: no probe run completed' % g.gname)

    warm_index = sum(1 for s in samples if s[0] < warmup)
    report = ['duration %.0f s, warm-up %.0f s, %d samples every %.0f s, loss %d%% each way'
              % (opt.duration, warmup, len(samples), opt.interval, LOSS_PERCENT),
              'nft drops: %d to the daemon, %d to the probes' % (drops['srv'], drops['cli']),
              'tcpechod counters at the end: connections_accepted=%d bytes_received=%d '
              'frames_echoed=%d udp_datagrams_echoed=%d connection_errors=%d idle_timeouts=%d'
              % (final['connections_accepted'], final['bytes_received'], final['frames_echoed'],
                 final['udp_datagrams_echoed'], final['connection_errors'], final['idle_timeouts']),
              'tcpechod exit status %r' % rc]
    for g in groups:
        total = {}
        for _, s in g.runs:
            for k, v in s.items():
                total[k] = total.get(k, 0) + (v or 0)
        report.append('probe %-6s %2d runs, failed %d: %s' % (
            g.gname, len(g.runs), len(g.failures),
            ', '.join('%s=%d' % kv for kv in total.items())))
    for col, name in ((1, 'rss_kib'), (2, 'fds')):
        p = plateau([s[col] for s in samples], warm_index)
        if p is None:
            failures.append('too few samples after the warm-up for a plateau check')
            continue
        first, last, growth = p
        report.append('%s: max first third %d, max last third %d, growth %+.2f%% (limit %d%%); '
                      'min %d, max %d over the run'
                      % (name, first, last, growth * 100, GROWTH_LIMIT * 100,
                         min(s[col] for s in samples), max(s[col] for s in samples)))
        if growth >= GROWTH_LIMIT:
            failures.append('%s grew %.1f%% after the warm-up' % (name, growth * 100))
    report.append('RESULT: %s' % ('PASS' if not failures else 'FAIL'))
    report += ['  ' + x for x in failures]
    text = '\n'.join(report) + '\n'
    with open(os.path.join(opt.out, 'result.txt'), 'w') as f:
        f.write(text)
    print(text, end='')
    return 0 if not failures else 1


if __name__ == '__main__':
    def _stop(signum, _frame):
        STOP.set()
        F.REGISTRY.cleanup()
        os._exit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, _stop)
    sys.exit(main())
