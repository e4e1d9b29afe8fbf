#!/usr/bin/env python3
"""EINTR, short reads/writes, ECONNABORTED and EAGAIN injected into the real tcpechod by the
LD_PRELOAD shim (io_shim.c): every echoed byte must come back intact, in every TCP framing and
over UDP, and the shim must really have injected (its counters, written when tcpechod exits).

Under ASan the sanitizer runtime is preloaded ahead of the shim (abuse_common.asan_runtime).
"""

import os
import random
import time

from abuse_common import (TCP_MODES, AbuseTestCase, Daemon, finish_probe, log, main,
                          read_shim_report, shim_env, start_probe)

# Per call: 10% EINTR, 25% short; accept4: 10% EINTR, 20% ECONNABORTED.
P_EINTR, P_SHORT, P_ABORTED = 0.10, 0.25, 0.20


def seed():
    s = int(os.environ.get('ABUSE_SEED', random.getrandbits(32)))
    log('shim seed %d (ABUSE_SEED=%d repeats the schedule per thread; thread timing varies)' % (s, s))
    return s


class ShimTcpTest(AbuseTestCase):
    def test_every_mode_intact_under_eintr_and_short_io(self):
        listeners = [dict(name=n, mode=m['mode'], **({'frame_size': m['frame_size']} if 'frame_size' in m else {}))
                     for n, m in TCP_MODES.items()]
        d = Daemon(listeners, workers=2)
        report = os.path.join(d.tmp.name, 'shim.report')
        d.env = shim_env(report, seed(), eintr=P_EINTR, short=P_SHORT, econnaborted=P_ABORTED)
        self.addCleanup(d.cleanup)
        d.start()
        t0 = time.monotonic()
        # Ping-pong and stream in each framing, all at once (both workers busy), plus many short
        # connections for accept4.
        runs = []
        for name, m in TCP_MODES.items():
            runs.append(start_probe(m['probe'] + ['-c', 3, '-n', 500, d.addr[name]]))
            runs.append(start_probe(m['probe'] + ['--workload', 'stream', '--window', '512K', '-c', 2,
                                                  '-n', 500, d.addr[name]]))
        runs.append(start_probe(['--mode', 'length', '-s', '1-2K', '--split', 3, '--split-delay', '0',
                                 '-c', 4, '-n', 100, d.addr['length']]))
        runs.append(start_probe(['-s', '1-1K', '-c', 60, '-T', 2, '-n', 5, d.addr['raw']]))
        results = [finish_probe(p) for p in runs]
        log('probe runs took %.1f s' % (time.monotonic() - t0))
        for r in results:
            self.assertProbeOk(r)
        total = sum(r.doc['totals']['bytes_verified'] for r in results)
        log('%d bytes verified over %d probe runs' % (total, len(results)))
        self.assertTrue(d.alive(), d.log()[-3000:])
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        c = read_shim_report(report)
        log('shim: %s' % ' '.join('%s=%d' % kv for kv in sorted(c.items()) if kv[1]))
        # Thousands of each, really injected (effective: the real call took all it was offered,
        # so the caller saw fewer bytes than it asked for while more were there).
        self.assertGreaterEqual(c['eintr_recv'] + c['eintr_send'], 1000, c)
        self.assertGreaterEqual(c['eintr_recv'], 300, c)
        self.assertGreaterEqual(c['eintr_send'], 300, c)
        self.assertGreaterEqual(c['short_effective_recv'] + c['short_effective_send'], 2000, c)
        self.assertGreaterEqual(c['short_effective_recv'], 500, c)
        self.assertGreaterEqual(c['short_effective_send'], 500, c)
        self.assertGreaterEqual(c['eintr_accept4'] + c['econnaborted_accept4'], 10, c)
        self.assertGreater(c['eintr_epoll_wait'], 0, c)
        self.assertGreaterEqual(c['rearm_ok'], 1000, c)
        self.assertEqual(c['rearm_failed'], 0, c)
        f = d.final_counters()
        self.assertEqual(f['connection_errors'], 0, f)
        self.assertEqual(f['bytes_received'], f['bytes_sent'], f)


class ShimUdpTest(AbuseTestCase):
    EAGAIN_MAX = 150

    def test_udp_intact_and_send_full_counted(self):
        d = Daemon([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']},
                    {'name': 'raw', 'mode': 'raw'}], workers=2)
        report = os.path.join(d.tmp.name, 'shim.report')
        d.env = shim_env(report, seed(), eintr=P_EINTR, short=P_SHORT, eagain=0.3, eagain_max=self.EAGAIN_MAX)
        self.addCleanup(d.cleanup)
        d.start()
        before = d.counters()
        self.assertEqual(before['udp_dropped_send_full'], 0, before)
        # Phase 1: a stream of datagrams; the shim says "send buffer full" (EAGAIN) to 30% of
        # the sendmmsg calls until its budget of EAGAIN_MAX injections is spent (after ~500 of
        # the ~1,200 calls this phase makes): those replies are dropped.
        run = finish_probe(start_probe(['--udp', '--workload', 'stream', '--window', '24K', '-c', 8, '-s', '1-1400',
                                        '-n', 1000, '--timeout', '300ms', '--max-loss', '100', d.addr['u/udp']]))
        self.assertUdpIntact(run)
        u = run.doc['udp']
        log('phase 1: sent %d received %d lost %d late %d' % (u['sent'], u['received'], u['lost'], u['late']))
        mid = d.counters()
        log('daemon: udp_dropped_send_full=%d udp_dropped_receive_queue=%d udp_datagrams_echoed=%d'
            % (mid['udp_dropped_send_full'], mid['udp_dropped_receive_queue'], mid['udp_datagrams_echoed']))
        self.assertGreater(mid['udp_dropped_send_full'], 0, mid)
        # Every reply dropped as "send buffer full" is a datagram the probe never got back.
        self.assertGreaterEqual(u['lost'], mid['udp_dropped_send_full'], (u, mid))
        # Phase 2: the budget is spent (EINTR and short batches go on): nothing may be lost now.
        after = finish_probe(start_probe(['--udp', '-c', 4, '-s', '0-1400', '-n', 500, '--timeout', '2s',
                                          d.addr['u/udp']]))
        self.assertUdpIntact(after, max_loss_allowed=False)
        self.assertProbeOk(finish_probe(start_probe(['-n', 200, '-s', '1-16K', d.addr['raw']])))
        end = d.counters()
        self.assertEqual(end['udp_dropped_send_full'], mid['udp_dropped_send_full'], end)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        c = read_shim_report(report)
        log('shim: %s' % ' '.join('%s=%d' % kv for kv in sorted(c.items()) if kv[1]))
        self.assertEqual(c['eagain_sendmmsg'], self.EAGAIN_MAX, c)
        # Each injected EAGAIN dropped the whole rest of that batch, and the daemon counted it.
        self.assertGreaterEqual(end['udp_dropped_send_full'], c['eagain_sendmmsg_datagrams'], (end, c))
        self.assertGreaterEqual(c['eintr_recvmmsg'], 100, c)
        self.assertGreaterEqual(c['eintr_sendmmsg'], 100, c)
        self.assertGreaterEqual(c['short_effective_recvmmsg'], 20, c)
        self.assertGreaterEqual(c['short_effective_sendmmsg'], 30, c)
        self.assertEqual(c['rearm_failed'], 0, c)


if __name__ == '__main__':
    main()
