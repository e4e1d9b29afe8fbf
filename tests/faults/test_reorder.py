#!/usr/bin/env python3
"""Delay and reordering: in each namespace, every TCP packet arriving goes to NFQUEUE and
nfq-delayer holds it for a random 0-3 ms before accepting it, so later packets overtake
earlier ones in both directions. The probe's TCP_INFO must show it received segments out of
order (rcv_ooopack: daemon -> probe) and that its peer's SACKs raised its reordering estimate
above the default 3 (probe -> daemon); every byte verifies in raw and length mode.

The nft in Debian 12's kernel here has no `queue` expression (CONFIG_NFT_QUEUE unset), so the
rule is added with iptables (nft backend, xt NFQUEUE target).
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab as F  # noqa: E402

QUEUE = 7
MAX_DELAY_US = 3000


def requirements():
    if not F.NFQ_DELAYER or not os.access(F.NFQ_DELAYER, os.X_OK):
        return 'nfq-delayer not built (libnetfilter-queue-dev missing)'
    if shutil.which('iptables') is None:
        return 'iptables not found (needed for the NFQUEUE rule; scripts/setup-deps.sh installs it)'
    return None


class Reordering(F.FaultCase):

    def start_delayers(self):
        for role in ('srv', 'cli'):
            p = self.lab.spawn(role, F.NFQ_DELAYER, QUEUE, MAX_DELAY_US, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.stdout.readline().strip(), 'ready')
            self.delayers[role] = p
            self.lab.sh(role, 'iptables', '-A', 'INPUT', '-p', 'tcp', '-j', 'NFQUEUE',
                        '--queue-num', QUEUE)

    def stop_delayers(self):
        """SIGTERM (it accepts what it holds), then its counts: {role: packets delayed}."""
        out = {}
        for role, p in self.delayers.items():
            self.lab.sh(role, 'iptables', '-F', 'INPUT')
            p.terminate()
            _, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
            fields = err.split()
            out[role] = int(fields[fields.index('delayed') + 1])
        return out

    def run_mode(self, listener, args):
        self.delayers = {}
        d = self.start_daemon([listener])
        target = d.target(listener['name'])
        self.start_delayers()
        # Warm-up (see faultlab.RSS_TOLERANCE_KIB), then the baseline, then the measured run.
        self.assertVerified(F.probe(self.lab, 'cli', args + ['--seed', 1, target]))
        base = d.idle_resources()
        run = F.probe(self.lab, 'cli', args + [target])
        delayed = self.stop_delayers()
        self.assertVerified(run)
        ooo = run.tcp_info_sum('rcv_ooopack')
        reordering = max(c['tcp_info']['reordering'] for c in run.doc['connections'])
        self.record('bytes_verified', run.doc['totals']['bytes_verified'])
        self.record('packets_delayed', '%d to daemon, %d to probe' % (delayed['srv'], delayed['cli']))
        self.record('probe_rcv_ooopack', ooo)
        self.record('probe_max_reordering', reordering)
        self.record('probe_total_retrans', run.tcp_info_sum('total_retrans'))
        self.assertGreater(delayed['srv'], 0)
        self.assertGreater(delayed['cli'], 0)
        self.assertGreater(ooo, 0, 'TCP_INFO: no segment reached the probe out of order\n%r' % run)
        self.assertGreater(reordering, 3, 'TCP_INFO: the probe never saw its segments reordered\n%r' % run)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)

    def test_raw_stream(self):
        self.run_mode({'name': 'raw', 'mode': 'raw'},
                      ['--workload', 'stream', '--window', '256K', '-s', '16K', '-n', 64, '-c', 2])

    def test_length_frames(self):
        self.run_mode({'name': 'length', 'mode': 'length'},
                      ['--workload', 'stream', '--window', '256K', '--mode', 'length', '-s', '1-16K',
                       '-n', 128, '-c', 2])


if __name__ == '__main__':
    F.main(extra_requirements=requirements)
