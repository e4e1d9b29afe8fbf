#!/usr/bin/env python3
"""Queue drops and queueing delay: a router namespace between probe and daemon shapes both
directions with tbf (10 Mbit/s) over a small pfifo (16 packets), so a bulk stream fills the
queue, packets are tail-dropped and a small ping-pong's latency rises by the queue's delay.
Every byte still verifies; the daemon's fds and RSS are back to the baseline afterwards.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab as F  # noqa: E402

RATE = '10mbit'
PFIFO_PACKETS = 16
# A full pfifo of 16 MTU-sized packets at 10 Mbit/s waits 16 * 1514 * 8 / 10e6 = 19 ms.


class QueueDropsAndDelay(F.FaultCase):
    routed = True

    def shape(self, dev):
        self.lab.sh('rtr', 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'tbf',
                    'rate', RATE, 'burst', '10kb', 'latency', '100ms')
        self.lab.sh('rtr', 'tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:',
                    'pfifo', 'limit', PFIFO_PACKETS)

    def test_tbf_pfifo_drops_and_delay(self):
        d = self.start_daemon([{'name': 'raw', 'mode': 'raw'}, {'name': 'length', 'mode': 'length'}])
        stream = ['--workload', 'stream', '--window', '1M', '-s', '64K', '-c', 2]
        bulk_args = stream + ['-t', '5s', d.target('raw')]
        ping_args = ['--mode', 'length', '-s', 64, '-t', '1.5s', d.target('length')]
        # Warm-up (unshaped), which is also the latency baseline.
        self.assertVerified(F.probe(self.lab, 'cli', stream + ['-n', 16, d.target('raw')]))
        baseline = F.probe(self.lab, 'cli', ping_args)
        self.assertVerified(baseline)
        base = d.resources()

        devs = [self.lab.dev('rtr', 'srv'), self.lab.dev('rtr', 'cli')]
        for dev in devs:
            self.shape(dev)
        bulk, bulk_argv = F.start_probe(self.lab, 'cli', bulk_args)
        # The ping-pong starts once the bulk stream has filled a queue (a pfifo drop), which
        # may take a while on a loaded machine.
        deadline = time.monotonic() + 10
        while (sum(self.lab.qdisc_stats('rtr', dev)['pfifo']['drops'] for dev in devs) == 0
               and time.monotonic() < deadline and bulk.poll() is None):
            time.sleep(0.05)
        loaded = F.probe(self.lab, 'cli', ping_args)
        bulk_run = F.finish_probe(bulk, bulk_argv)
        self.assertVerified(bulk_run)
        self.assertVerified(loaded)

        drops = {dev: self.lab.qdisc_stats('rtr', dev)['pfifo']['drops'] for dev in devs}
        lat_base, lat_loaded = baseline.doc['latency_us'], loaded.doc['latency_us']
        mib_s = bulk_run.doc['totals']['bytes_per_second'] / 2**20
        self.record('pfifo_drops_to_daemon', drops[devs[0]])
        self.record('pfifo_drops_to_probe', drops[devs[1]])
        self.record('bulk_MiB_s', '%.2f' % mib_s)
        self.record('bulk_retrans', bulk_run.tcp_info_sum('total_retrans'))
        for q in ('p50', 'p90'):
            self.record('pingpong_%s_us' % q, '%.0f -> %.0f' % (lat_base[q], lat_loaded[q]))
        self.assertGreater(sum(drops.values()), 0, 'the pfifo never dropped: %r' % drops)
        self.assertGreater(bulk_run.tcp_info_sum('total_retrans'), 0, bulk_run)
        # The shaper holds the stream to 10 Mbit/s (1.19 MiB/s) each way.
        self.assertLess(mib_s, 1.5, bulk_run)
        # Queueing delay: the ping-pong waits behind a (partly) full queue each way; an
        # unshaped veth answers in well under a millisecond. p90, not p50: the queues fill and
        # drain as the streams' windows grow and halve, and are nearly empty part of the time.
        self.assertGreater(lat_loaded['p90'], lat_base['p90'] + 2000, loaded)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)


if __name__ == '__main__':
    F.main()
