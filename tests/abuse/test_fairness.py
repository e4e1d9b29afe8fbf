#!/usr/bin/env python3
"""Fairness: one connection floods tcpechod as fast as it can (probe stream workload, 1 MiB
messages, 4 MiB window) while another does ping-pong with 64-byte messages on the same
listener. The ping-pong's p99 latency must stay under 50 ms, with workers = 1 (both
connections on one loop: the worst case) and with workers = 2. Reports the flood's throughput.

meson runs this test alone (is_parallel: false): it measures latency on a 2-core machine.
"""

import time

from abuse_common import AbuseTestCase, Daemon, finish_probe, log, main, start_probe

P99_LIMIT_US = 50_000
FLOOD_SECONDS = 5
PINGPONG_SECONDS = 4


class FairnessTest(AbuseTestCase):
    def measure(self, workers):
        d = Daemon([{'name': 'raw', 'mode': 'raw'}], workers=workers)
        self.addCleanup(d.cleanup)
        d.start()
        target = d.addr['raw']
        flood = start_probe(['--workload', 'stream', '--window', '4M', '-s', '1M', '-t', FLOOD_SECONDS, target])
        time.sleep(0.5)  # the flood is running before the ping-pong starts
        ping = finish_probe(start_probe(['-s', 64, '-t', PINGPONG_SECONDS, target]))
        flood_run = finish_probe(flood)
        self.assertProbeOk(ping)
        self.assertProbeOk(flood_run)
        lat = ping.doc['latency_us']
        mib_s = flood_run.doc['totals']['bytes_per_second'] / (1 << 20)
        log('workers=%d: ping-pong %d round trips, latency us p50 %.0f p99 %.0f p99.9 %.0f max %.0f; '
            'flood %.0f MiB/s each way' % (workers, lat['count'], lat['p50'], lat['p99'], lat['p99_9'],
                                           lat['max'], mib_s))
        # Both were served at the same time: the flood moved data all along, the ping-pong too.
        self.assertGreater(lat['count'], 100, ping)
        self.assertGreater(flood_run.doc['totals']['bytes_sent'], 64 << 20, flood_run)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        return lat

    def test_pingpong_p99_one_worker(self):
        lat = self.measure(1)
        self.assertLess(lat['p99'], P99_LIMIT_US, lat)

    def test_pingpong_p99_two_workers(self):
        lat = self.measure(2)
        self.assertLess(lat['p99'], P99_LIMIT_US, lat)


if __name__ == '__main__':
    main()
