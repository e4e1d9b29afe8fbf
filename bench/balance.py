#!/usr/bin/env python3
"""Connections and CPU per worker thread, for workers = 2, 4 and 8, side by side for two
tcpechod builds (e.g. before and after the balancer).

Per build and worker count: tcpechod (one raw listener, idle_timeout 0) is started, then
`tcpecho-probe -c CONNS -t SECONDS -s 64` opens CONNS connections in one burst and runs 64-byte
ping-pong on all of them. Connections per worker are counted from the kernel's side: each
worker has its own epoll set, and /proc/PID/fdinfo/FD lists one `tfd:` line per registered
descriptor (the count before the burst is subtracted). CPU per worker is utime + stime of its
thread (`tcpechod-wN`) over the run. Prints, per case, the counts (largest first) and max/mean.

  balance.py --probe BIN --build NAME=BIN [--build NAME=BIN] [--workers 2,4,8]
             [--connections 1000] [--seconds 3]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf('SC_CLK_TCK')


def epoll_counts(pid):
    """{epoll fd: registered descriptors} of the process."""
    out = {}
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            if os.readlink('/proc/%d/fd/%s' % (pid, fd)) != 'anon_inode:[eventpoll]':
                continue
            with open('/proc/%d/fdinfo/%s' % (pid, fd)) as f:
                out[int(fd)] = sum(1 for line in f if line.startswith('tfd:'))
        except OSError:
            pass
    return out


def worker_cpu(pid):
    """{thread name: CPU seconds} of the worker threads."""
    out = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                name = f.read().strip()
            if not name.startswith('tcpechod-w'):
                continue
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / TICKS
        except OSError:
            pass
    return out


def one_case(args, binary, workers, tmp):
    conf = os.path.join(tmp, 'tcpechod.toml')
    with open(conf, 'w') as f:
        f.write('workers = %d\nlog_level = "notice"\n[limits]\nidle_timeout = 0\n'
                '[[listen]]\nname = "echo"\naddress = "127.0.0.1"\nport = 0\n' % workers)
    log = open(os.path.join(tmp, 'tcpechod.log'), 'w+')
    proc = subprocess.Popen([binary, '--config', conf], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        port = None
        for _ in range(100):
            log.seek(0)
            m = re.search(r'address=127\.0\.0\.1:(\d+)', log.read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if port is None:
            sys.exit('tcpechod did not start')
        time.sleep(0.2)
        base = epoll_counts(proc.pid)
        cpu0 = worker_cpu(proc.pid)
        probe = subprocess.Popen([args.probe, '-q', '-c', str(args.connections), '-t', '%ds' % args.seconds,
                                  '-s', '64', '127.0.0.1:%d' % port], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(args.seconds / 2)
        during = epoll_counts(proc.pid)
        _, err = probe.communicate(timeout=args.seconds + 60)
        cpu1 = worker_cpu(proc.pid)
        if probe.returncode != 0:
            sys.exit('probe failed: ' + err[-2000:])
        grown = sorted((during.get(fd, 0) - n for fd, n in base.items()), reverse=True)[:workers]
        cpu = sorted((cpu1[t] - cpu0.get(t, 0) for t in cpu1), reverse=True)
        return grown, cpu
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def ratio(values):
    mean = sum(values) / len(values) if values else 0
    return max(values) / mean if mean > 0 else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--probe', required=True)
    ap.add_argument('--build', action='append', required=True, help='NAME=PATH of a tcpechod')
    ap.add_argument('--workers', default='2,4,8')
    ap.add_argument('--connections', type=int, default=1000)
    ap.add_argument('--seconds', type=int, default=3)
    args = ap.parse_args()
    builds = [b.split('=', 1) for b in args.build]
    print('%d connections in one burst, 64 B ping-pong for %d s; per worker, largest first'
          % (args.connections, args.seconds))
    with tempfile.TemporaryDirectory(prefix='tcpecho-balance-') as tmp:
        for workers in [int(w) for w in args.workers.split(',')]:
            for name, binary in builds:
                conns, cpu = one_case(args, binary, workers, tmp)
                print('workers=%d %-8s connections %-32s max/mean %.2f   CPU s %-40s max/mean %.2f' % (
                    workers, name, '/'.join(str(c) for c in conns), ratio(conns),
                    '/'.join('%.2f' % c for c in cpu), ratio(cpu)), flush=True)


if __name__ == '__main__':
    main()
