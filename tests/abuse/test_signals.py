#!/usr/bin/env python3
"""A signal storm while traffic runs in every TCP framing and over UDP: every byte intact, the
daemon alive and answering, a clean exit afterwards.

Which signals can interrupt what: tcpechod blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 in every
thread before starting any (server.cpp) and reads them from a signalfd in the main loop, so they
never interrupt a worker's system call; SIGPIPE is ignored; SIGWINCH, SIGURG and SIGCHLD are
ignored by default and the kernel discards them without waking anyone. Socket calls are
non-blocking and never sleep, so no signal can make recv()/send() fail with EINTR: those paths
are exercised by the shim (test_shim.py). What does reach the workers is a stop: after
SIGSTOP + SIGCONT a thread blocked in epoll_wait() returns EINTR even without a handler
(signal(7), "Interruption of system calls ... by a stop signal"). The storm sends all of these;
the shim, loaded with no injection at all, counts the EINTRs the real epoll_wait() returned.
"""

import os
import signal
import time

from abuse_common import (TCP_MODES, AbuseTestCase, Daemon, finish_probe, log, main,
                          read_shim_report, shim_env, start_probe)

STORM_SECONDS = 3.0
MAX_ROUNDS = 2000           # each round: 10 x SIGUSR1, 3 ignored signals, a stop/continue pair
TRAFFIC_SECONDS = 5         # probes run this long, the storm starts once they are connected


class SignalStormTest(AbuseTestCase):
    def test_signal_storm_under_traffic(self):
        listeners = [dict(name=n, mode=m['mode'], **({'frame_size': m['frame_size']} if 'frame_size' in m else {}))
                     for n, m in TCP_MODES.items()]
        listeners.append({'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']})
        d = Daemon(listeners, workers=2)
        report = os.path.join(d.tmp.name, 'shim.report')
        d.env = shim_env(report, 1)  # no injection: counts what the real calls return
        self.addCleanup(d.cleanup)
        d.start()

        runs = [start_probe(m['probe'] + ['-c', 2, '-t', TRAFFIC_SECONDS, d.addr[name]])
                for name, m in TCP_MODES.items()]
        runs.append(start_probe(['--workload', 'stream', '-s', '1-256K', '-t', TRAFFIC_SECONDS, d.addr['raw']]))
        runs.append(start_probe(['--udp', '-c', 2, '-s', '0-1400', '-t', TRAFFIC_SECONDS, '--timeout', '2s',
                                 d.addr['u/udp']]))
        time.sleep(0.5)

        sent = {}

        def send(sig):
            os.kill(d.pid, sig)
            sent[sig.name] = sent.get(sig.name, 0) + 1

        start = time.monotonic()
        rounds = 0
        stopped = False
        try:
            while rounds < MAX_ROUNDS and time.monotonic() - start < STORM_SECONDS:
                rounds += 1
                for _ in range(10):
                    send(signal.SIGUSR1)
                if rounds % 10 == 0:
                    send(signal.SIGHUP)
                for sig in (signal.SIGWINCH, signal.SIGURG, signal.SIGCHLD):
                    send(sig)
                send(signal.SIGSTOP)
                stopped = True
                time.sleep(0.002)
                send(signal.SIGCONT)
                stopped = False
                time.sleep(0.001)
        finally:
            if stopped:
                os.kill(d.pid, signal.SIGCONT)
        storm_s = time.monotonic() - start
        log('storm: %d signals in %.1f s (%s)' % (sum(sent.values()), storm_s,
                                                  ', '.join('%s %d' % kv for kv in sorted(sent.items()))))
        self.assertTrue(d.alive(), d.log()[-3000:])

        results = [finish_probe(p) for p in runs]
        for r in results[:-1]:
            self.assertProbeOk(r)
        udp = results[-1]
        self.assertUdpIntact(udp, max_loss_allowed=False)
        log('probes: %d TCP bytes verified, %d datagrams verified' % (
            sum(r.doc['totals']['bytes_verified'] for r in results[:-1]), udp.doc['udp']['received']))

        # Still answering after the storm, and the handled signals were handled.
        self.assertProbeOk(finish_probe(start_probe(['--mode', 'length', '-n', 200, d.addr['length']])))
        c = d.counters()
        self.assertEqual(c['connection_errors'], 0, c)
        text = d.log()
        counter_lines = text.count('notice: counters ')
        reloads = text.count('reload complete')
        log('daemon: %d counters lines, %d reloads completed' % (counter_lines, reloads))
        self.assertGreaterEqual(counter_lines, 2)
        self.assertLessEqual(counter_lines, sent['SIGUSR1'] + 1)
        self.assertGreaterEqual(reloads, 1)
        bad = [line for line in text.splitlines() if ': err:' in line or ': warning:' in line]
        self.assertEqual(bad, [], text[-3000:])

        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        shim = read_shim_report(report)
        real_eintr = {k: v for k, v in shim.items() if k.startswith('real_eintr_') and v}
        log('EINTR returned by the real calls: %s' % real_eintr)
        self.assertGreater(shim['real_eintr_epoll_wait'], 0, shim)
        # Non-blocking socket calls never sleep: no signal interrupts them.
        for k in ('recv', 'send', 'recvmmsg', 'sendmmsg', 'accept4'):
            self.assertEqual(shim['real_eintr_' + k], 0, shim)


if __name__ == '__main__':
    main()
