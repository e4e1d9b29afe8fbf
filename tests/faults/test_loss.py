#!/usr/bin/env python3
"""5% random loss each way (nft numgen on each namespace's input hook).

TCP: the stream (raw) and the framed modes verify every byte, TCP_INFO shows the probe's
side retransmitted, and the drop counters show both directions lost packets.
UDP: the probe's lost figure equals the datagrams the two drop rules counted.
After each case the daemon's fds and RSS are back to the baseline taken after a warm-up.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab as F  # noqa: E402

LOSS_PERCENT = 5

# Per mode: the listener and the probe arguments (stream workload: a lost segment is
# recovered by SACK/fast retransmit while the rest flows; pingpong would wait for RTOs).
TCP_CASES = {
    'raw': ({'name': 'raw', 'mode': 'raw'},
            ['--workload', 'stream', '--window', '512K', '-s', '64K', '-n', '16', '-c', '4']),
    'length': ({'name': 'length', 'mode': 'length'},
               ['--workload', 'stream', '--window', '256K', '--mode', 'length', '-s', '1-16K',
                '-n', '120', '-c', '4']),
    'line': ({'name': 'line', 'mode': 'line'},
             ['--workload', 'stream', '--window', '256K', '--mode', 'line', '-s', '1-8K',
              '-n', '250', '-c', '4']),
    'fixed': ({'name': 'fixed', 'mode': 'fixed', 'frame_size': 1000},
              ['--workload', 'stream', '--window', '256K', '--mode', 'fixed', '--frame-size',
               '1000', '-s', '1000', '-n', '500', '-c', '4']),
}


class TcpLoss(F.FaultCase):

    def run_mode(self, mode, loss=LOSS_PERCENT):
        listener, args = TCP_CASES[mode]
        d = self.start_daemon([listener])
        target = d.target(listener['name'])
        for role in ('srv', 'cli'):
            self.lab.nft(role, F.loss_ruleset(loss))
        # Warm-up (see faultlab.RSS_TOLERANCE_KIB), then the baseline, then the measured run.
        self.assertVerified(F.probe(self.lab, 'cli', args + ['--seed', 1, target]))
        base = d.idle_resources()
        def drops():
            out = {}
            for role in ('srv', 'cli'):
                n = self.lab.nft_counters(role)
                out[role] = n['loss'] + n['loss-data']
                out[role + '-data'] = n['loss-data']
            return out
        before = drops()
        run = F.probe(self.lab, 'cli', args + [target])
        self.assertVerified(run)
        after = drops()
        dropped = {k: after[k] - before[k] for k in after}
        retrans = run.tcp_info_sum('total_retrans')
        self.record('bytes_verified', run.doc['totals']['bytes_verified'])
        self.record('dropped_to_daemon', '%d (%d data)' % (dropped['srv'], dropped['srv-data']))
        self.record('dropped_to_probe', dropped['cli'])
        self.record('probe_total_retrans', retrans)
        self.assertGreater(dropped['srv'], 0, 'no packet to the daemon was dropped')
        self.assertGreater(dropped['cli'], 0, 'no packet to the probe was dropped')
        self.assertGreater(dropped['srv-data'], 0, 'no data segment to the daemon was dropped')
        # Every data segment of the probe's that was dropped had to be sent again for the run
        # to verify (a retransmission may carry two small lost segments at once, hence /2;
        # one also happens without loss now and then, a tail-loss probe on a busy machine).
        self.assertGreaterEqual(retrans, max(1, dropped['srv-data'] // 2),
                                'TCP_INFO: the probe retransmitted less than was lost\n%r' % run)
        self.assertEqual(d.counters()['connection_errors'], 0)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)

    def test_raw_stream(self):
        self.run_mode('raw')

    def test_length_frames(self):
        self.run_mode('length')

    def test_line_frames(self):
        self.run_mode('line')

    def test_fixed_frames(self):
        self.run_mode('fixed')


class UdpLoss(F.FaultCase):

    def test_probe_loss_equals_drop_counters(self):
        # Receive queues that absorb a scheduling hiccup of the daemon or the probe (the
        # defaults, 208 KiB, hold ~150 of these datagrams: 40 ms at this rate).
        for role in ('srv', 'cli'):
            self.lab.sh(role, 'sysctl', '-q', '-w', 'net.core.rmem_default=4194304')
        d = self.start_daemon([{'name': 'udp', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        port = d.port('udp', 'udp')
        # Paced, each datagram one packet (512 bytes < MTU), an echo takes well under a
        # millisecond and --timeout is 500 ms: nothing arrives late. A lost datagram holds its
        # place in the window until it times out, hence a window wider than rate x timeout x
        # loss per flow.
        args = ['--udp', '-c', 4, '--workload', 'stream', '--window', '64K', '-s', 512, '-n', 1000,
                '--rate', 4000, '--timeout', '500ms', '--max-loss', '30', d.target('udp', 'udp')]
        warm = F.probe(self.lab, 'cli', args)
        self.assertEqual(warm.rc, 0, warm)
        base = d.idle_resources()
        # Requests are dropped on the daemon's input, echoes on the probe's: a datagram is
        # lost once at most (a dropped request has no echo to drop).
        self.lab.nft('srv', F.loss_ruleset(LOSS_PERCENT, 'udp', port, 'dport'))
        self.lab.nft('cli', F.loss_ruleset(LOSS_PERCENT, 'udp', port, 'sport'))
        c0 = d.counters()
        run = F.probe(self.lab, 'cli', args)
        c1 = d.counters()
        self.assertEqual(run.rc, 0, run)
        u = run.doc['udp']
        drops_to_daemon = self.lab.nft_counters('srv')['loss']
        drops_to_probe = self.lab.nft_counters('cli')['loss']
        # Besides the rules, a datagram can only be lost where it is counted: the daemon's
        # receive queue overflowing or its send buffer full (udp_dropped_*), or the probe's
        # receive queue (probe_receive_drops). With 4 MiB queues both stay 0 unless a process
        # is kept off the CPU for over a second; they are counted in, with a tolerance: a
        # queue drop is reported with the next datagram the socket receives (SO_RXQ_OVFL), so
        # one from the warm-up's end may be counted in this run.
        drop_kinds = {k: c1[k] - c0[k] for k in c1 if k.startswith('udp_dropped') and c1[k] > c0[k]}
        daemon_drops = sum(drop_kinds.values())
        self.record('sent', u['sent'])
        self.record('lost', u['lost'])
        self.record('nft_dropped', '%d+%d' % (drops_to_daemon, drops_to_probe))
        self.record('daemon_dropped', drop_kinds)
        self.record('probe_receive_drops', u['probe_receive_drops'])
        self.assertEqual(u['corrupted'], 0, run)
        self.assertEqual(u['duplicated'], 0, run)
        self.assertEqual(u['late'], 0, run)
        self.assertGreater(drops_to_daemon, 0)
        self.assertGreater(drops_to_probe, 0)
        self.assertEqual(c1['udp_send_errors'] - c0['udp_send_errors'], 0)
        # lost = dropped on the way there + on the way back (+ the counted queue drops above,
        # normally 0: then the equality is exact).
        nft_total = drops_to_daemon + drops_to_probe
        self.assertGreaterEqual(u['lost'], nft_total, run)
        self.assertLessEqual(u['lost'], nft_total + daemon_drops + u['probe_receive_drops'], run)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)


if __name__ == '__main__':
    F.main()
