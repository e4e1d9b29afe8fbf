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
        base = d.resources()
        before = {role: self.lab.nft_counters(role)['loss'] for role in ('srv', 'cli')}
        run = F.probe(self.lab, 'cli', args + [target])
        self.assertVerified(run)
        dropped = {role: self.lab.nft_counters(role)['loss'] - before[role] for role in ('srv', 'cli')}
        retrans = run.tcp_info_sum('total_retrans')
        self.record('bytes_verified', run.doc['totals']['bytes_verified'])
        self.record('dropped_to_daemon', dropped['srv'])
        self.record('dropped_to_probe', dropped['cli'])
        self.record('probe_total_retrans', retrans)
        self.assertGreater(dropped['srv'], 0, 'no packet to the daemon was dropped')
        self.assertGreater(dropped['cli'], 0, 'no packet to the probe was dropped')
        self.assertGreater(retrans, 0, 'TCP_INFO: the probe never retransmitted\n%r' % run)
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
        d = self.start_daemon([{'name': 'udp', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        port = d.port('udp', 'udp')
        # Paced, a few datagrams in flight per flow, each one packet (512 bytes < MTU), a
        # generous --timeout: nothing is lost but what the rules drop, nothing arrives late.
        args = ['--udp', '-c', 4, '--workload', 'stream', '--window', '8K', '-s', 512, '-n', 1500,
                '--rate', 6000, '--timeout', '2s', '--max-loss', '30', d.target('udp', 'udp')]
        warm = F.probe(self.lab, 'cli', args)
        self.assertEqual(warm.rc, 0, warm)
        self.assertEqual(warm.doc['udp']['lost'], 0, warm)
        base = d.resources()
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
        self.record('sent', u['sent'])
        self.record('lost', u['lost'])
        self.record('nft_dropped', '%d+%d' % (drops_to_daemon, drops_to_probe))
        self.assertEqual(u['corrupted'], 0, run)
        self.assertEqual(u['duplicated'], 0, run)
        self.assertEqual(u['late'], 0, run)
        self.assertGreater(drops_to_daemon, 0)
        self.assertGreater(drops_to_probe, 0)
        # The daemon answered every datagram that reached it and dropped none itself, so the
        # accounting is exact: lost = dropped on the way there + dropped on the way back.
        received = c1['udp_datagrams_received'] - c0['udp_datagrams_received']
        echoed = c1['udp_datagrams_echoed'] - c0['udp_datagrams_echoed']
        self.assertEqual(received, u['sent'] - drops_to_daemon)
        self.assertEqual(echoed, received)
        self.assertEqual(u['lost'], drops_to_daemon + drops_to_probe, run)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)


if __name__ == '__main__':
    F.main()
