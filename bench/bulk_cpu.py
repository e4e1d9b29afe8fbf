#!/usr/bin/env python3
"""Bulk echo CPU, side by side: server CPU seconds per GiB of a 1 GiB full-duplex echo on one
connection, tcpechod (workers = 1) against the blocking thread-per-connection peer
(bench/peers/blocking_echo.c: recv into 1 MiB, send it all), driven by two clients:

  probe    tcpecho-probe --workload stream -s 1M -n 1024 --window 4M (every byte verified)
  loadgen  bench/loadgen.c bulk: a sender thread and a reader, 1 MiB buffers, count only

Rounds alternate the servers (order rotated), so both see the same machine. Server CPU is
read at the run's edges: from a cgroup holding only that server (root; nanoseconds, its
ended threads included), else utime + stime from /proc (clock ticks). Then one more run per
server and client under `perf stat` counts the server's syscalls (recvfrom, sendto,
epoll_wait, all) per GiB. Prints one line per run, then medians and the per-round ratio
tcpechod / blocking. Run by bench/bulk_cpu.sh (which builds what it needs).

  bulk_cpu.py --tcpechod BIN --blocking BIN --loadgen BIN --probe BIN [--rounds N] [--ref BIN]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

GIB = 1 << 30
TICKS = os.sysconf('SC_CLK_TCK')
CONFIG = '''workers = 1
log_level = "notice"
[limits]
idle_timeout = 0
[[listen]]
name = "echo"
address = "127.0.0.1"
port = 0
mode = "raw"
'''


CGROUP_ROOTS = ('/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup')   # cgroup v1 cpuacct, then v2
cgroups = {}   # pid -> cgroup dir of that server alone


def own_cgroup(pid):
    """Moves server `pid` into a cgroup of its own, so its CPU time is read in nanoseconds
    (threads that ended included) rather than in clock ticks. Needs root; None otherwise."""
    for root in CGROUP_ROOTS:
        if not os.path.exists(os.path.join(root, 'cgroup.procs')):
            continue
        path = os.path.join(root, 'tcpecho-bulk-%d' % pid)
        try:
            os.mkdir(path)
            with open(os.path.join(path, 'cgroup.procs'), 'w') as f:
                f.write(str(pid))
            cgroups[pid] = path
            return path
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def release_cgroups():
    for path in cgroups.values():
        try:
            os.rmdir(path)   # the server has exited by now, so the group is empty
        except OSError:
            pass


def cpu_seconds(pid):
    path = cgroups.get(pid)
    if path is not None:
        if os.path.exists(os.path.join(path, 'cpuacct.usage')):
            with open(os.path.join(path, 'cpuacct.usage')) as f:
                return int(f.read()) / 1e9
        with open(os.path.join(path, 'cpu.stat')) as f:
            for line in f:
                if line.startswith('usage_usec '):
                    return int(line.split()[1]) / 1e6
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime, stime


def start(name, argv, tmp):
    log = open(os.path.join(tmp, name + '.log'), 'w+')
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for _ in range(100):
        log.seek(0)
        m = re.search(r'port=(\d+)|address=127\.0\.0\.1:(\d+)', log.read())
        if m:
            return proc, int(m.group(1) or m.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    log.seek(0)
    sys.exit('%s did not start: %s' % (name, log.read()))


def pinned(args, cpu, argv):
    return ['taskset', '-c', str(cpu)] + argv if args.pin else argv


def client_argv(args, client, port):
    if client == 'probe':
        argv = [args.probe, '-q', '--workload', 'stream', '-s', '1M', '-n', str(1024 * args.gib),
                '--window', '4M', '127.0.0.1:%d' % port]
    else:
        argv = [args.loadgen, 'bulk', '-P', str(port), '-n', str(GIB * args.gib)]
    return pinned(args, 1, argv)


def one_run(args, client, pid, port, perf=False):
    """Server CPU s/GiB (and syscalls per GiB under perf)."""
    perf_proc = None
    out = None
    if perf:
        out = tempfile.NamedTemporaryFile(prefix='bulk-perf-', delete=False).name
        perf_proc = subprocess.Popen(['perf', 'stat', '-x,', '-o', out, '-p', str(pid), '-e',
                                      'raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,'
                                      'syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait'])
        time.sleep(0.3)
    before = cpu_seconds(pid)
    t0 = time.monotonic()
    p = subprocess.run(client_argv(args, client, port), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=300)
    seconds = time.monotonic() - t0
    used = cpu_seconds(pid) - before
    if p.returncode != 0:
        sys.exit('%s failed (%d): %s %s' % (client, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    result = {'cpu_s_per_gib': used / args.gib, 'mib_s': 1024 * args.gib / seconds}
    if perf_proc is not None:
        perf_proc.send_signal(2)
        perf_proc.wait(30)
        with open(out) as f:
            for line in f:
                parts = line.strip().split(',')
                if len(parts) > 2 and parts[0].isdigit():
                    name = parts[2].split(':')[-1].replace('sys_enter_', '').replace('sys_enter', 'all')
                    result[name] = int(parts[0]) // args.gib
        os.unlink(out)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--tcpechod', required=True)
    ap.add_argument('--ref', help='another tcpechod build, run beside it as tcpechod-ref')
    ap.add_argument('--blocking', required=True)
    ap.add_argument('--loadgen', required=True)
    ap.add_argument('--probe', required=True)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--clients', default='probe,loadgen')
    ap.add_argument('--gib', type=int, default=1, help='GiB per run (more: finer CPU figures)')
    ap.add_argument('--pin', action='store_true',
                    help='servers on CPU 0, clients on CPU 1 (taskset): the same placement for all')
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix='tcpecho-bulk-')
    conf = os.path.join(tmp, 'tcpechod.toml')
    with open(conf, 'w') as f:
        f.write(CONFIG)
    servers = {}
    try:
        servers['tcpechod'] = start('tcpechod', pinned(args, 0, [args.tcpechod, '--config', conf]), tmp)
        if args.ref:
            servers['tcpechod-ref'] = start('tcpechod-ref', pinned(args, 0, [args.ref, '--config', conf]), tmp)
        servers['blocking'] = start('blocking', pinned(args, 0, [args.blocking, '0']), tmp)
        names = list(servers)
        precise = all(own_cgroup(proc.pid) for proc, _ in servers.values())
        print('server CPU from %s' % ('a cgroup per server (ns)' if precise else '/proc/PID/stat (clock ticks)'))
        clients = args.clients.split(',')
        cpu = {(c, s): [] for c in clients for s in names}
        ratios = {(c, s): [] for c in clients for s in names if s != 'blocking'}
        for r in range(args.rounds):
            for client in clients:
                order = names[r % len(names):] + names[:r % len(names)]
                got = {}
                for s in order:
                    proc, port = servers[s]
                    got[s] = one_run(args, client, proc.pid, port)
                    cpu[(client, s)].append(got[s]['cpu_s_per_gib'])
                    print('round %d %-7s %-12s %.3f s/GiB  %6.0f MiB/s' % (
                        r + 1, client, s, got[s]['cpu_s_per_gib'], got[s]['mib_s']), flush=True)
                for s in names:
                    if s != 'blocking':
                        ratios[(client, s)].append(got[s]['cpu_s_per_gib'] / got['blocking']['cpu_s_per_gib'])
        syscalls = {}
        for client in clients:
            for s in names:
                proc, port = servers[s]
                syscalls[(client, s)] = one_run(args, client, proc.pid, port, perf=True)
        print()
        print('server CPU s per GiB, medians over %d rounds (range), and per-round ratio to blocking:' % args.rounds)
        for client in clients:
            for s in names:
                v = cpu[(client, s)]
                line = '  %-7s %-12s %.3f (%.3f-%.3f)' % (client, s, statistics.median(v), min(v), max(v))
                if s != 'blocking':
                    q = ratios[(client, s)]
                    line += '   ratio %.2f (%.2f-%.2f; %s)' % (statistics.median(q), min(q), max(q),
                                                              ' '.join('%.2f' % x for x in q))
                print(line)
        print('syscalls per GiB (one run each under perf stat):')
        for client in clients:
            for s in names:
                k = syscalls[(client, s)]
                print('  %-7s %-12s all %5d  recvfrom %5d  sendto %5d  epoll_wait %5d' % (
                    client, s, k.get('all', -1), k.get('recvfrom', -1), k.get('sendto', -1),
                    k.get('epoll_wait', -1)))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        release_cgroups()


if __name__ == '__main__':
    main()
