#!/usr/bin/env python3
"""Blackhole: the peer vanishes mid-stream. The probe streams to tcpechod, then the daemon's
namespace drops every packet from the probe's address (nft, input hook) and the probe is
killed: its FIN/RST and any later RST never arrive, so the daemon's socket keeps unacked,
pending output forever. With `send_timeout` (TCP_USER_TIMEOUT and tcpechod's own check that
pending output makes progress) the daemon must close the connection within about
send_timeout; the control case without it shows the connection would otherwise stay.
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlab as F  # noqa: E402

SEND_TIMEOUT_S = 2.0
SLACK_S = 3.0      # the kernel's retransmission timer granularity, the daemon's timer, polling
CONNECTIONS = 2


def requirements():
    """send_timeout must be a tcpechod config key (the daemon side of a black-holed peer)."""
    with tempfile.NamedTemporaryFile('w', suffix='.toml') as f:
        f.write('[limits]\nsend_timeout = "2s"\n[[listen]]\nname = "x"\naddress = "127.0.0.1"\n'
                'port = 0\n')
        f.flush()
        p = subprocess.run([F.TCPECHOD, '--check-config', '--config', f.name],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        return ('this tcpechod has no send_timeout yet (pending on the daemon side): %s'
                % p.stdout.strip().splitlines()[-1:])
    return None


class Blackhole(F.FaultCase):

    def vanish(self, send_timeout_s):
        """Streams, blackholes, kills the probe; returns (daemon, baseline, t_blackhole)."""
        d = self.start_daemon([{'name': 'raw', 'mode': 'raw'}],
                              limits='send_timeout = "%gs"\nidle_timeout = 120' % send_timeout_s)
        target = d.target('raw')
        stream = ['--workload', 'stream', '--window', '4M', '-s', '64K', '-c', CONNECTIONS]
        self.assertVerified(F.probe(self.lab, 'cli', stream + ['-n', 16, target]))
        base = d.idle_resources()
        proc, argv = F.start_probe(self.lab, 'cli', stream + ['-t', '60s', target])
        # Streaming: the connections are up (tcpechod's own count, not the fds: an fd count
        # read while a connection opens or closes is no count of connections) and the daemon
        # has output in flight.
        c = d.wait_connections_active(CONNECTIONS)
        self.assertEqual(c['connections_active'], CONNECTIONS, c)
        self.assertEqual(d.fd_count(), base['fds'] + CONNECTIONS,
                         'baseline %d fds; now %s' % (base['fds'], d.fd_targets()))
        time.sleep(0.5)
        self.lab.nft('srv', 'table inet faults {\n'
                            '  chain input {\n'
                            '    type filter hook input priority 0; policy accept;\n'
                            '    ip saddr %s counter drop comment "blackhole"\n'
                            '  }\n'
                            '}\n' % self.lab.addr['cli'])
        t0 = time.monotonic()
        proc.kill()
        proc.communicate(timeout=10)
        return d, base, t0

    def test_send_timeout_reclaims_the_connection(self):
        d, base, t0 = self.vanish(SEND_TIMEOUT_S)
        deadline = t0 + SEND_TIMEOUT_S + SLACK_S + 5
        while d.fd_count() > base['fds'] and time.monotonic() < deadline:
            time.sleep(0.05)
        reclaim_s = time.monotonic() - t0
        c = d.counters()
        self.record('reclaim_s', '%.2f' % reclaim_s)
        self.record('send_timeouts', c.get('send_timeouts'))
        self.record('connection_errors', c['connection_errors'])
        self.record('blackholed_packets', self.lab.nft_counters('srv')['blackhole'])
        self.assertEqual(d.fd_count(), base['fds'], 'connections not reclaimed after %.1f s' % reclaim_s)
        self.assertLessEqual(reclaim_s, SEND_TIMEOUT_S + SLACK_S)
        # Not earlier than the timeout allows: nothing from the peer got through.
        self.assertGreaterEqual(reclaim_s, SEND_TIMEOUT_S * 0.75)
        self.assertGreater(self.lab.nft_counters('srv')['blackhole'], 0)
        # Closed by the send timeout (tcpechod's check, counted and logged as such) or by the
        # kernel's TCP_USER_TIMEOUT (ETIMEDOUT: a connection error) - the two race.
        self.assertEqual(c.get('send_timeouts', 0) + c['connection_errors'], CONNECTIONS, c)
        self.assertBackToBaseline(d, base)
        self.assertCleanExit(d)

    def test_control_without_send_timeout_the_connection_stays(self):
        d, base, t0 = self.vanish(0)
        time.sleep(SEND_TIMEOUT_S + SLACK_S)
        self.record('fds_after_%gs' % (time.monotonic() - t0), '%d (baseline %d)' % (d.fd_count(), base['fds']))
        self.assertEqual(d.fd_count(), base['fds'] + CONNECTIONS)


if __name__ == '__main__':
    F.main(extra_requirements=requirements)
