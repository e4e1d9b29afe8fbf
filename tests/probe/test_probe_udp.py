#!/usr/bin/env python3
"""tcpecho-probe --udp: against UDP echo servers written for the tests (udp_servers.py), good
and faulty, whose faults are keyed on datagram indexes so every count is exact; its exit
statuses, messages and JSON; and against the real tcpechod (sizes 0 to 65507 over IPv4,
65527 over IPv6, many flows across workers, the stream workload), skipped only while
tcpechod --check-config rejects proto = "udp"."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import udp_servers as us
from probe_common import (PROBE, TCPECHOD, Daemon, ProbeTestCase, hex_bytes, ipv6_loopback_works,
                          kill_process, main, run_probe)

IPV6 = ipv6_loopback_works()
SEED = ['--seed', '20240611']
# A loss is detected after --timeout: short, so the tests that lose datagrams stay quick, but
# long enough that a Python echo server on a loaded machine (the suites run in parallel)
# always answers within it: the counts are exact. Where the workload allows, all datagrams
# are in flight at once (ALL_IN_FLIGHT) so that their losses overlap.
LOSS_TIMEOUT = ['--timeout', '1500ms']


def all_in_flight(n, size):
    return ['-n', n, '-s', size, '--workload', 'stream', '--window', n * size]

TOP_KEYS = {'tool', 'version', 'protocol', 'target', 'options', 'result', 'errors',
            'latency_us', 'udp'}
COUNTERS = ['sent', 'received', 'lost', 'duplicated', 'reordered', 'corrupted', 'late']
EXTRA_COUNTERS = {'probe_receive_drops'}


def udp_probe(target, *args, json_output=True, timeout=60):
    return run_probe(['--udp'] + [str(a) for a in args] + [target], json_output=json_output,
                     timeout=timeout)


class UdpTestCase(ProbeTestCase):

    def serve(self, server):
        self.addCleanup(server.close)
        return server

    def counts(self, run):
        return {k: run.doc['udp'][k] for k in COUNTERS}

    def assertCounts(self, run, **want):
        """The totals: every counter not named must be 0, except sent (given or not checked)."""
        got = self.counts(run)
        expect = {k: 0 for k in COUNTERS if k != 'sent'}
        expect.update(want)
        self.assertEqual({k: got[k] for k in expect}, expect, run)
        # Per flow and in total they add up.
        flows = run.doc['udp']['flows']
        for k in COUNTERS:
            self.assertEqual(sum(f[k] for f in flows), got[k], (k, run))
        # Every datagram sent ends received, lost, or corrupted (its echo named it).
        self.assertLessEqual(got['received'] + got['lost'], got['sent'], run)

    def assertUdpOk(self, run, sent, size=None):
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(run.doc['result']['status'], 'ok', run)
        self.assertEqual(run.doc['result']['exit_code'], 0, run)
        self.assertEqual(run.doc['errors'], [], run)
        self.assertCounts(run, sent=sent, received=sent)
        self.assertEqual(run.doc['latency_us']['count'], sent, run)
        u = run.doc['udp']
        if size is not None:
            self.assertEqual(u['bytes_sent'], sent * size, run)
        self.assertEqual(u['bytes_received'], u['bytes_sent'], run)
        for f in u['flows']:
            self.assertIsNone(f['error'], run)

    def assertFailed(self, run, exit_code):
        self.assertEqual(run.rc, exit_code, run)
        self.assertEqual(run.doc['result']['status'], 'failed', run)
        self.assertEqual(run.doc['result']['exit_code'], exit_code, run)

    def only_error(self, run, kind):
        errs = [e for e in run.doc['errors'] if e['kind'] == kind]
        self.assertEqual(len(errs), 1, run)
        return errs[0]


class GoodEcho(UdpTestCase):

    def test_pingpong_counts_and_wire_format(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-n', 200, '-s', 100, *SEED)
        self.assertUdpOk(run, 200, size=100)
        self.assertEqual(run.doc['protocol'], 'udp')
        self.assertEqual(run.doc['options']['workload'], 'pingpong')
        self.assertGreater(run.doc['latency_us']['min'], 0, run)
        # What the server saw: 200 datagrams of 100 bytes, each headed by magic, flow 0 and
        # its sequence number, send times increasing.
        got = server.only_client()
        self.assertEqual(len(got), 200)
        times = []
        for seq, d in enumerate(got):
            self.assertEqual(len(d), 100)
            magic, flow, dseq, send_ns = us.header_of(d)
            self.assertEqual((magic, flow, dseq), (us.MAGIC, 0, seq))
            times.append(send_ns)
        self.assertEqual(times, sorted(times))
        # The same seed sends the same payloads again.
        again = self.serve(us.UdpEchoServer())
        self.assertUdpOk(udp_probe(again.target, '-n', 200, '-s', 100, *SEED), 200)
        self.assertEqual([d[24:] for d in again.only_client()], [d[24:] for d in got])

    def test_every_size_class(self):
        """0 and 1 (no room for a header), 23, 24 and 25 (around the header), 1472 (an
        Ethernet MTU's payload), 65507 (the IPv4 maximum)."""
        server = self.serve(us.UdpEchoServer())
        for size in (0, 1, 23, 24, 25, 1472, 65507):
            with self.subTest(size=size):
                run = udp_probe(server.target, '-n', 20, '-s', size)
                self.assertUdpOk(run, 20, size=size)
        sizes = sorted({len(d) for ds in server.received().values() for d in ds})
        self.assertEqual(sizes, [0, 1, 23, 24, 25, 1472, 65507])

    def test_size_range_and_stream(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-n', 500, '-s', '0-100', '--workload', 'stream',
                        '--window', '2K', *SEED)
        self.assertUdpOk(run, 500)
        sizes = [len(d) for d in server.only_client()]
        self.assertEqual(sum(sizes), run.doc['udp']['bytes_sent'])
        self.assertGreater(len(set(sizes)), 50)
        self.assertTrue(all(0 <= s <= 100 for s in sizes))

    def test_stream_window(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-n', 2000, '-s', 1000, '--workload', 'stream',
                        '--window', '8K')
        self.assertUdpOk(run, 2000, size=1000)

    def test_many_flows_across_threads(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-n', 50, '-s', 64, '-c', 8, '-T', 2)
        self.assertUdpOk(run, 400, size=64)
        flows = run.doc['udp']['flows']
        self.assertEqual([f['id'] for f in flows], list(range(8)))
        for f in flows:
            self.assertEqual((f['sent'], f['received']), (50, 50), run)
        # Eight sockets, one per flow, each carrying its own flow id in every header.
        got = server.received()
        self.assertEqual(len(got), 8)
        self.assertEqual({port for (_, port) in got},
                         {int(f['local'].rsplit(':', 1)[1]) for f in flows})
        for datagrams in got.values():
            self.assertEqual(len({us.header_of(d)[1] for d in datagrams}), 1)
        self.assertEqual({us.header_of(ds[0])[1] for ds in got.values()}, set(range(8)))

    @unittest.skipUnless(IPV6, 'no IPv6 loopback (::1)')
    def test_ipv6_up_to_65527(self):
        server = self.serve(us.UdpEchoServer(host='::1'))
        for size in (0, 1472, 65527):
            with self.subTest(size=size):
                self.assertUdpOk(udp_probe(server.target, '-n', 10, '-s', size), 10, size=size)
        self.assertTrue(run_probe(['--udp', '-n', 1, server.target]).doc['target']['address']
                        .startswith('[::1]:'))

    def test_foreign_source_is_never_seen(self):
        """A connected socket receives only from the server's address."""
        server = self.serve(us.ForeignSourceServer(index=3))
        run = udp_probe(server.target, '-n', 10, '-s', 200)
        self.assertUdpOk(run, 10)
        self.assertEqual(server.foreign_sent, 1)


class Loss(UdpTestCase):

    def test_drop_every_tenth(self):
        server = self.serve(us.DropEveryServer(10))
        run = udp_probe(server.target, *all_in_flight(50, 100), *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=50, received=45, lost=5)
        self.assertAlmostEqual(run.doc['udp']['loss_percent'], 10.0)
        self.assertAlmostEqual(run.doc['result']['loss_percent'], 10.0)
        err = self.only_error(run, 'loss')
        self.assertEqual(err['exit_code'], 1)
        self.assertIsNone(err['flow'])
        self.assertIn('loss 10.00% exceeds --max-loss 0%', err['detail'])
        self.assertIn('tcpecho-probe: loss 10.00% exceeds --max-loss 0%', run.stderr)
        self.assertEqual(run.doc['latency_us']['count'], 45)

    def test_hdr_out_counts_the_echoed_datagrams(self):
        server = self.serve(us.DropEveryServer(10))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'udp.hgrm')
            run = udp_probe(server.target, *all_in_flight(50, 100), *LOSS_TIMEOUT, '--hdr-out', path)
            self.assertFailed(run, 1)
            with open(path) as f:
                lines = f.read().splitlines()
        last = [line for line in lines if line and not line.startswith('#')][-1].split()
        self.assertEqual((float(last[1]), int(last[2])), (1.0, 45))   # the 45 echoed, not the 50 sent
        self.assertIn('Total count    =           45]', lines[-2])

    def test_drop_in_pingpong(self):
        server = self.serve(us.DropEveryServer(10))
        run = udp_probe(server.target, '-n', 20, '-s', 100, *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=20, received=18, lost=2)
        self.assertEqual(len(server.only_client()), 20)   # it waited, then went on

    def test_max_loss_threshold(self):
        server = self.serve(us.DropEveryServer(10))
        for max_loss, rc in (('10', 0), ('10%', 0), ('25.5', 0), ('9.99', 1)):
            with self.subTest(max_loss=max_loss):
                run = udp_probe(server.target, *all_in_flight(20, 50), '--max-loss', max_loss,
                                *LOSS_TIMEOUT)
                self.assertEqual(run.rc, rc, run)
                self.assertCounts(run, sent=20, received=18, lost=2)
                self.assertEqual(run.doc['errors'] != [], rc != 0, run)

    def test_loss_of_short_datagrams(self):
        # Alone in flight whatever the workload: each loss costs a --timeout.
        server = self.serve(us.DropEveryServer(5))
        for size in (0, 1, 23):
            with self.subTest(size=size):
                run = udp_probe(server.target, '-n', 6, '-s', size, '--workload', 'stream',
                                *LOSS_TIMEOUT)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=6, received=5, lost=1)

    def test_loss_in_stream_workload(self):
        server = self.serve(us.DropEveryServer(7))
        # 200 in flight: the window keeps moving while lost datagrams wait for their timeout.
        run = udp_probe(server.target, '-n', 700, '-s', 200, '--workload', 'stream',
                        '--window', '40000', '--max-loss', '15', *LOSS_TIMEOUT)
        self.assertEqual(run.rc, 0, run)
        self.assertCounts(run, sent=700, received=600, lost=100)

    def test_late_echo(self):
        """An echo that comes after --timeout: lost, then late; it stays lost."""
        server = self.serve(us.DelayServer(index=2, delay_s=2.5))
        # Datagram 2 is sent at 0.4 s, lost at 1.9 s, back at 2.9 s; the run lasts 4 s.
        run = udp_probe(server.target, '-n', 20, '-s', 100, '--rate', 5, *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=20, received=19, lost=1, late=1)
        self.assertIn('loss 5.00% exceeds --max-loss 0%', self.only_error(run, 'loss')['detail'])

    def test_late_echo_of_a_short_datagram(self):
        """A header-less datagram's echo comes after --timeout, long after it (abuse-shim,
        seen under ASan with an abuse shim): late, never corrupted. Every datagram is short, so each one is alone in
        flight: datagram 2 is lost after --timeout, 3.. go on, and the late echo of 2 arrives
        while 9 is in flight, or after one sent long after it."""
        for release, rate in ((9, []), (15, ['--rate', 5])):
            with self.subTest(release=release):
                server = self.serve(us.HoldServer(lambda d, i: i == 2, release=release))
                run = udp_probe(server.target, '-n', 20, '-s', 16, *rate, *LOSS_TIMEOUT, *SEED)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=20, received=19, lost=1, late=1)
                self.assertEqual([e['kind'] for e in run.doc['errors']], ['loss'], run)

    def test_late_echoes_of_short_datagrams_in_mixed_sizes(self):
        """Sizes 1-40 (some short, some with a header), the stream workload: the echo of the
        first short datagram after the third is held back past --timeout: late, not corrupted."""
        server = self.serve(us.HoldServer(lambda d, i: i >= 3 and len(d) < us.HEADER_SIZE, release=40))
        run = udp_probe(server.target, '-n', 60, '-s', '1-40', '--workload', 'stream',
                        '--window', 400, *LOSS_TIMEOUT, *SEED)
        self.assertCounts(run, sent=60, received=59, lost=1, late=1)
        self.assertEqual([e['kind'] for e in run.doc['errors']], ['loss'], run)

    def test_own_receive_buffer_drops_are_reported(self):
        """While the probe is stopped (SIGSTOP), the server floods it with 400 foreign
        datagrams: its socket's buffer holds some, the kernel drops the rest and says how
        many (SO_RXQ_OVFL). Every one is either read (corrupted) or counted dropped."""
        server = self.serve(us.UdpEchoServer())
        proc = subprocess.Popen([PROBE, '--udp', '-J', '-n', '20', '--rate', '10', '-s', '100',
                                 server.target], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_process, proc)
        self.addCleanup(lambda: proc.poll() is None and proc.send_signal(signal.SIGCONT))
        deadline = time.monotonic() + 10
        while sum(len(d) for d in server.received().values()) < 3:
            self.assertLess(time.monotonic(), deadline, 'the probe sent nothing')
            time.sleep(0.01)
        time.sleep(0.03)   # between two paced datagrams (100 ms apart): the echo is back
        proc.send_signal(signal.SIGSTOP)
        self.wait_stopped(proc.pid)
        addr = next(iter(server.received()))
        server.burst(addr, 400, b'\xee' * 1000)
        time.sleep(0.1)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=30)
        doc = json.loads(out)
        u = doc['udp']
        self.assertEqual(proc.returncode, 1, err)
        self.assertEqual((u['sent'], u['received'], u['lost']), (20, 20, 0), doc)
        self.assertGreater(u['probe_receive_drops'], 0, doc)
        self.assertEqual(u['corrupted'] + u['probe_receive_drops'], 400, doc)
        self.assertEqual(u['flows'][0]['probe_receive_drops'], u['probe_receive_drops'])

    def wait_stopped(self, pid):
        """Until every thread of `pid` is stopped (state T in /proc), at most 5 s."""
        deadline = time.monotonic() + 5
        task = '/proc/%d/task' % pid
        while True:
            states = []
            for tid in os.listdir(task):
                try:
                    with open(os.path.join(task, tid, 'stat')) as f:
                        states.append(f.read().rsplit(')', 1)[1].split()[0])
                except OSError:
                    pass
            if states and all(st in ('T', 't') for st in states):
                return
            self.assertLess(time.monotonic(), deadline, 'not stopped: %s' % states)
            time.sleep(0.005)

    def test_silent_server_everything_lost(self):
        server = self.serve(us.SilentServer())
        run = udp_probe(server.target, *all_in_flight(3, 1024), *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=3, lost=3)
        self.assertAlmostEqual(run.doc['udp']['loss_percent'], 100.0)
        self.assertEqual(run.doc['latency_us']['count'], 0)
        self.assertEqual(len(server.only_client()), 3)


class Duplicates(UdpTestCase):

    def test_duplicates_are_counted_not_failed(self):
        server = self.serve(us.DupEveryServer(10, k=3))
        run = udp_probe(server.target, '-n', 50, '-s', 100)
        self.assertUdpOk_with(run, sent=50, received=50, duplicated=5)

    def test_duplicates_in_stream(self):
        server = self.serve(us.DupEveryServer(4, k=1))
        run = udp_probe(server.target, '-n', 400, '-s', 500, '--workload', 'stream',
                        '--window', '8K')
        self.assertUdpOk_with(run, sent=400, received=400, duplicated=100)

    def test_duplicates_of_short_datagrams(self):
        """No header: a duplicate is recognised as a copy of the previous datagram."""
        server = self.serve(us.DupEveryServer(10, k=3))
        run = udp_probe(server.target, '-n', 40, '-s', 16, *SEED)
        self.assertUdpOk_with(run, sent=40, received=40, duplicated=4)

    def assertUdpOk_with(self, run, **counts):
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(run.doc['errors'], [], run)
        self.assertCounts(run, **counts)


class Reorder(UdpTestCase):

    def test_swapped_pairs(self):
        server = self.serve(us.SwapPairsServer())
        run = udp_probe(server.target, '-n', 40, '-s', 100, '--workload', 'stream',
                        '--window', '1000')
        self.assertEqual(run.rc, 0, run)
        # Each pair arrives as 2k+1, 2k: the second is lower than the highest received.
        self.assertCounts(run, sent=40, received=40, reordered=20)

    def test_odd_count_leaves_the_last_one_held(self):
        server = self.serve(us.SwapPairsServer())
        run = udp_probe(server.target, '-n', 9, '-s', 100, '--workload', 'stream',
                        '--window', '1000', *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=9, received=8, reordered=4, lost=1)


class Corruption(UdpTestCase):

    SIZE = 100
    N = 10

    def run_fault(self, server, *extra):
        return udp_probe(server.target, '-n', self.N, '-s', self.SIZE, *LOSS_TIMEOUT, *SEED,
                         *extra)

    def assertDumps(self, err, sent, echoed):
        """The hex dumps show the real bytes around the offset, the marked one at it."""
        off = err['offset']
        if err['expected']:
            exp, mark = hex_bytes(err['expected'])
            self.assertIsNotNone(mark, err)
            self.assertEqual(exp, sent[off - mark:off - mark + len(exp)], err)
        got, gmark = hex_bytes(err['received'].replace('[end]', ''))
        if gmark is not None:
            self.assertEqual(got, echoed[off - gmark:off - gmark + len(got)], err)

    def test_flip_a_payload_or_send_time_byte(self):
        """The header still names the datagram: it is corrupted, not also lost."""
        for offset, region in ((24, 'payload'), (57, 'payload'), (99, 'payload'),
                               (16, 'send time'), (23, 'send time')):
            with self.subTest(offset=offset):
                server = self.serve(us.FlipServer(index=4, offset=offset))
                run = self.run_fault(server)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=self.N, received=self.N - 1, corrupted=1)
                err = self.only_error(run, 'corrupted')
                self.assertEqual((err['flow'], err['seq'], err['offset']), (0, 4, offset), run)
                self.assertEqual(err['exit_code'], 1)
                self.assertIn('byte %d of the %d-byte datagram differs (%s)'
                              % (offset, self.SIZE, region), err['detail'])
                sent = server.only_client()[4]
                echoed = server.tx[next(iter(server.tx))][4]
                self.assertDumps(err, sent, echoed)
                self.assertIn('tcpecho-probe: flow 0, datagram 4, offset %d: corrupted:' % offset,
                              run.stderr)
                self.assertIn('--seed 20240611', run.stderr)
                self.assertEqual(run.doc['udp']['flows'][0]['error'], 'corrupted')

    def test_flip_magic_flow_or_sequence(self):
        """A damaged magic, flow id or sequence number names no datagram: the datagram is
        corrupted and its original, never echoed intact, is lost."""
        for offset, words in ((0, 'bad magic'), (3, 'bad magic'), (5, 'of flow'),
                              (7, 'of flow'), (10, 'never sent'), (15, 'never sent')):
            with self.subTest(offset=offset):
                server = self.serve(us.FlipServer(index=4, offset=offset))
                run = self.run_fault(server)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=self.N, received=self.N - 1, corrupted=1, lost=1)
                err = self.only_error(run, 'corrupted')
                self.assertEqual((err['flow'], err['seq'], err['offset']), (0, None, offset), run)
                self.assertIn(words, err['detail'])
                sent = server.only_client()[4]
                echoed = server.tx[next(iter(server.tx))][4]
                self.assertDumps(err, sent, echoed)

    def test_flip_a_short_datagram(self):
        for size, offset in ((1, 0), (23, 22), (23, 5)):
            with self.subTest(size=size, offset=offset):
                server = self.serve(us.FlipServer(index=2, offset=offset))
                run = udp_probe(server.target, '-n', 6, '-s', size, *LOSS_TIMEOUT, *SEED)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=6, received=5, corrupted=1)
                err = self.only_error(run, 'corrupted')
                self.assertEqual((err['seq'], err['offset']), (2, offset), run)

    def test_truncated_echo(self):
        server = self.serve(us.TruncateServer(index=6, keep=self.SIZE - 1))
        run = self.run_fault(server)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=self.N, received=self.N - 1, corrupted=1)
        err = self.only_error(run, 'corrupted')
        self.assertEqual((err['seq'], err['offset']), (6, self.SIZE - 1), run)
        self.assertIn('the echo has 99 bytes, the datagram 100', err['detail'])
        self.assertTrue(err['received'].endswith('[end]'), err)

    def test_truncated_below_the_header(self):
        server = self.serve(us.TruncateServer(index=6, keep=10))
        run = self.run_fault(server)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=self.N, received=self.N - 1, corrupted=1, lost=1)
        err = self.only_error(run, 'corrupted')
        self.assertEqual((err['seq'], err['offset']), (None, 10), run)
        self.assertIn('shorter than the 24-byte header', err['detail'])

    def test_echo_of_another_size(self):
        server = self.serve(us.ExtendServer(index=1, extra=b'\x00XYZ'))
        run = self.run_fault(server)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=self.N, received=self.N - 1, corrupted=1)
        err = self.only_error(run, 'corrupted')
        self.assertEqual((err['seq'], err['offset']), (1, self.SIZE), run)
        self.assertIn('the echo has 104 bytes, the datagram 100', err['detail'])
        got, mark = hex_bytes(err['received'])
        self.assertEqual(got[mark:], b'\x00XYZ')

    def test_unsolicited_datagrams(self):
        """Datagrams nobody sent: corrupted, and the real echoes all still verify."""
        cases = [
            ('garbage', lambda d: b'hello', None, 'shorter than the 24-byte header'),
            ('other flow', lambda d: us.with_header(d, flow=7), 7, 'of flow 7 arrived on flow 0'),
            ('future seq', lambda d: us.with_header(d, seq=10 ** 9), None, 'never sent'),
            ('bad magic', lambda d: us.with_header(d, magic=b'XXXX'), 0, 'bad magic'),
        ]
        for name, make, offset, words in cases:
            with self.subTest(case=name):
                server = self.serve(us.UnsolicitedServer(index=2, make=make))
                run = self.run_fault(server)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=self.N, received=self.N, corrupted=1)
                err = self.only_error(run, 'corrupted')
                self.assertIsNone(err['seq'], run)
                self.assertIn(words, err['detail'])
                if offset is not None:
                    self.assertEqual(err['offset'], offset, run)
                else:
                    self.assertIsNotNone(err['offset'], run)

    def test_a_short_datagram_of_another_flow_is_corrupted(self):
        """A server that sends one client's header-less datagram to another client: that one
        reports it (it matches neither its datagram in flight nor an earlier one). Without a
        header it cannot tell a foreign datagram from a damaged echo of its own in flight, so
        it counts that one corrupted (and its real echo, after, a duplicate)."""
        for size in (1, 16, 23):
            with self.subTest(size=size):
                server = self.serve(us.CrossFlowServer(index=5))
                run = udp_probe(server.target, '-n', 10, '-s', size, '-c', 2, '-T', 1,
                                *LOSS_TIMEOUT, *SEED)
                self.assertEqual(server.leaked, 1)
                self.assertFailed(run, 1)
                self.assertCounts(run, sent=20, received=19, corrupted=1, duplicated=1)
                err = self.only_error(run, 'corrupted')
                self.assertIn('too short for a header', err['detail'])

    def test_only_the_first_corruption_per_flow_is_described(self):
        server = self.serve(us.FlipServer(index=(1, 3, 4), offset=50))
        run = udp_probe(server.target, '-n', 10, '-s', 100, '-c', 2, *LOSS_TIMEOUT)
        self.assertFailed(run, 1)
        self.assertCounts(run, sent=20, received=14, corrupted=6)
        errs = [e for e in run.doc['errors'] if e['kind'] == 'corrupted']
        self.assertEqual(sorted((e['flow'], e['seq']) for e in errs), [(0, 1), (1, 1)], run)
        self.assertNotIn('loss', [e['kind'] for e in run.doc['errors']])
        self.assertIn('6 corrupted datagrams',
                      udp_probe(server.target, '-n', 10, '-s', 100, '-c', 2,
                                json_output=False).stdout)


class Errors(UdpTestCase):

    def test_no_server_is_a_network_error(self):
        port = us.free_udp_port()
        run = udp_probe('127.0.0.1:%d' % port, '-n', 5)
        self.assertFailed(run, 3)
        err = self.only_error(run, 'refused')
        self.assertEqual(err['exit_code'], 3)
        self.assertEqual(err['detail'], 'no UDP echo server at 127.0.0.1:%d (connection refused)'
                         % port)
        self.assertIn('tcpecho-probe: no UDP echo server at 127.0.0.1:%d (connection refused)'
                      % port, run.stderr)
        self.assertNotIn('loss', [e['kind'] for e in run.doc['errors']])
        human = udp_probe('127.0.0.1:%d' % port, '-n', 5, '-c', 4, json_output=False)
        self.assertEqual(human.rc, 3, human)
        self.assertIn('tcpecho-probe: 4 flows: no UDP echo server at 127.0.0.1:%d (connection '
                      'refused)' % port, human.stderr)
        self.assertIn('RESULT: FAILED (exit 3)', human.stdout)

    def test_65508_bytes_over_ipv4_is_refused_by_the_kernel(self):
        server = self.serve(us.UdpEchoServer())
        want = ('tcpecho-probe: the kernel refused a 65508-byte datagram to %s: Message too long '
                '(the largest UDP payload is 65507 bytes over IPv4, 65527 over IPv6)\n'
                % server.target)
        run = udp_probe(server.target, '-n', 3, '-s', 65508, json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertEqual(run.stderr, want, run)
        # -J still prints its document, and says why.
        run = udp_probe(server.target, '-J', '-n', 3, '-s', 65508, json_output=False)
        self.assertEqual(run.rc, 2, run)
        doc = json.loads(run.stdout)
        self.assertEqual(doc['result']['exit_code'], 2)
        self.assertEqual([e['kind'] for e in doc['errors']], ['message_too_long'])
        self.assertEqual(doc['udp']['sent'], 0)
        self.assertEqual(server.received(), {})

    @unittest.skipUnless(IPV6, 'no IPv6 loopback (::1)')
    def test_65528_bytes_over_ipv6_is_refused(self):
        server = self.serve(us.UdpEchoServer(host='::1'))
        run = udp_probe(server.target, '-n', 3, '-s', 65528, json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn('the kernel refused a 65528-byte datagram to %s: Message too long'
                      % server.target, run.stderr)

    def test_size_range_reaching_too_far(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-n', 200, '-s', '65000-65535', json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertRegex(run.stderr, r'the kernel refused a 655(0[89]|[1-3]\d)-byte datagram')

    def test_tcp_options_are_usage_errors(self):
        for args in (['-m', 'length'], ['--recv', 'once'], ['--split', '2'],
                     ['--frame-size', '10'], ['--max-loss', '101'], ['-s', '65536']):
            with self.subTest(args=args):
                run = udp_probe('127.0.0.1:9', *args, json_output=False)
                self.assertEqual(run.rc, 2, run)
                self.assertRegex(run.stderr, r'^tcpecho-probe: \S')
                self.assertEqual(run.stdout, '')
        run = run_probe(['--max-loss', '1', '127.0.0.1:9'], json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn('--max-loss applies to --udp only', run.stderr)


class Timing(UdpTestCase):

    def test_rate_paces_all_flows_together(self):
        server = self.serve(us.UdpEchoServer())
        start = time.monotonic()
        run = udp_probe(server.target, '-n', 100, '-c', 2, '--rate', 200, '-s', 64)
        wall = time.monotonic() - start
        self.assertUdpOk(run, 200)
        # 200 datagrams at 200/s: the last one is due after 0.995 s.
        self.assertGreaterEqual(run.doc['udp']['seconds'], 0.9, run)
        self.assertLess(run.doc['udp']['seconds'], 3.0, run)
        self.assertGreaterEqual(wall, 0.9)
        times = sorted(us.header_of(d)[3] for ds in server.received().values() for d in ds)
        spread = (times[-1] - times[0]) / 1e9
        self.assertGreater(spread, 0.9)
        self.assertLess(spread, 2.5)

    def test_time_limit(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-t', '1s', '--rate', 100, '-s', 32)
        self.assertEqual(run.rc, 0, run)
        sent = run.doc['udp']['sent']
        self.assertGreaterEqual(sent, 90, run)
        self.assertLessEqual(sent, 101, run)
        self.assertCounts(run, sent=sent, received=sent)
        self.assertIsNone(run.doc['options']['count'])

    def test_sigint_stops_sending_and_reports(self):
        server = self.serve(us.UdpEchoServer())
        proc = subprocess.Popen([PROBE, '--udp', '-J', '-t', '60s', '--rate', '200', '-s', '64',
                                 server.target], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_process, proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        doc = json.loads(out)
        self.assertTrue(doc['result']['interrupted'])
        u = doc['udp']
        self.assertGreater(u['sent'], 50)
        self.assertEqual((u['received'], u['lost']), (u['sent'], 0), doc)

    def test_second_sigint_counts_what_is_in_flight_as_lost(self):
        server = self.serve(us.SilentServer())
        proc = subprocess.Popen([PROBE, '--udp', '-J', '-n', '1000', '-c', '3', '--timeout', '30s',
                                 server.target], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_process, proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)   # stops sending; would wait 30 s for the echoes
        time.sleep(0.3)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)   # reports now
        out, err = proc.communicate(timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(proc.returncode, 1, err)
        doc = json.loads(out)
        self.assertEqual((doc['udp']['sent'], doc['udp']['lost']), (3, 3), doc)
        self.assertTrue(doc['result']['interrupted'])


class Output(UdpTestCase):

    def test_json_document_keys(self):
        good = self.serve(us.UdpEchoServer())
        ok = udp_probe(good.target, '-n', 5, '-c', 2, *SEED)
        self.assertUdpOk(ok, 10)
        bad = udp_probe(self.serve(us.FlipServer(index=1, offset=30)).target, '-n', 5, *SEED)
        self.assertEqual(bad.rc, 1, bad)
        for run in (ok, bad):
            d = run.doc
            self.assertEqual(set(d), TOP_KEYS)
            self.assertEqual(d['tool'], 'tcpecho-probe')
            self.assertEqual(set(d['target']), {'host', 'port', 'address'})
            self.assertEqual(set(d['options']), {
                'protocol', 'size_min', 'size_max', 'count', 'time_s', 'flows', 'threads',
                'workload', 'window', 'rate', 'seed', 'timeout_s', 'max_loss_percent'})
            self.assertEqual(d['options']['protocol'], 'udp')
            self.assertEqual(d['options']['seed'], 20240611)
            self.assertEqual(set(d['result']), {'status', 'exit_code', 'failed_flows',
                                                'interrupted', 'loss_percent',
                                                'max_loss_percent'})
            self.assertEqual(set(d['latency_us']), {'count', 'min', 'mean', 'p50', 'p90', 'p99',
                                                    'p99_9', 'max', 'from_scheduled_time'})
            self.assertEqual(set(d['udp']), set(COUNTERS) | EXTRA_COUNTERS | {
                'seconds', 'loss_percent', 'bytes_sent', 'bytes_received',
                'datagrams_per_second', 'bytes_per_second', 'flows'})
            for f in d['udp']['flows']:
                self.assertEqual(set(f), set(COUNTERS) | EXTRA_COUNTERS | {'id', 'local', 'bytes_sent',
                                                          'bytes_received', 'error'})
            for e in d['errors']:
                self.assertEqual(set(e), {'kind', 'exit_code', 'flow', 'seq', 'offset', 'detail',
                                          'expected', 'received'})
        self.assertEqual(len(ok.doc['udp']['flows']), 2)
        self.assertEqual(bad.doc['result']['failed_flows'], 1)
        lat = ok.doc['latency_us']
        self.assertLessEqual(lat['min'], lat['p50'])
        self.assertLessEqual(lat['p50'], lat['p99'])
        self.assertLessEqual(lat['p99'], lat['max'])
        self.assertGreater(ok.doc['udp']['datagrams_per_second'], 0)

    def test_human_summary(self):
        server = self.serve(us.DupEveryServer(5, k=0))
        run = udp_probe(server.target, '-n', 20, '-s', 64, *SEED, json_output=False)
        self.assertEqual(run.rc, 0, run)
        lines = run.stdout.splitlines()
        self.assertRegex(lines[0], r'^PROBE UDP 127\.0\.0\.1 port \d+: pingpong, 1 flow x 20 '
                                   r'datagrams of 64 bytes, timeout 5 s, seed 20240611$')
        self.assertIn('20 datagrams sent, 20 received, 0 lost (0.00%), 4 duplicated, '
                      '0 reordered, 0 corrupted, 0 late', lines)
        self.assertTrue(any(re.match(r'latency:  min [\d.]+ [um]?s, p50 .*, p90 .*, p99 .*, '
                                     r'p99\.9 .*, max ', l) for l in lines), run)
        self.assertTrue(any(re.match(r'rate: +[\d.]+ s, \d+ datagrams/s, [\d.]+ MiB/s', l)
                            for l in lines), run)
        self.assertRegex(lines[-1], r'^RESULT: OK.*\(seed 20240611\)$')
        self.assertEqual(run.stderr, '')

    def test_human_summary_on_loss(self):
        server = self.serve(us.DropEveryServer(4))
        run = udp_probe(server.target, *all_in_flight(8, 100), *LOSS_TIMEOUT, json_output=False)
        self.assertEqual(run.rc, 1, run)
        self.assertIn('8 datagrams sent, 6 received, 2 lost (25.00%)', run.stdout)
        self.assertIn('RESULT: FAILED (exit 1): loss 25.00% exceeds --max-loss 0%', run.stdout)

    def test_quiet_and_progress(self):
        server = self.serve(us.UdpEchoServer())
        run = udp_probe(server.target, '-q', '-n', 10, json_output=False)
        self.assertEqual((run.rc, run.stdout, run.stderr), (0, '', ''))
        run = udp_probe(server.target, '--progress', '-t', '2.2s', '--rate', 100,
                        json_output=False)
        self.assertEqual(run.rc, 0, run)
        self.assertGreaterEqual(len(re.findall(r'^\[ +\d+\.\ds\] .* verified', run.stdout,
                                               re.M)), 2, run)
        # -J with --progress is still one document; the progress lines go to stderr.
        run = udp_probe(server.target, '--progress', '-t', '1.5s', '--rate', 100)
        self.assertEqual(run.rc, 0, run)
        self.assertGreaterEqual(len(re.findall(r'^\[ +\d+\.\ds\] .* verified', run.stderr, re.M)), 1, run)

    def test_progress_on_a_terminal_stderr_when_stdout_is_piped(self):
        """stdout piped (| tee, > file), stderr a terminal: progress shows there, so a run
        that waits --timeout for every lost datagram is not silent for minutes."""
        import pty
        server = self.serve(us.DropEveryServer(2))
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        try:
            p = subprocess.run([PROBE, '--udp', '-n', '6', '-s', '100', '--timeout', '1s', '--max-loss', '100',
                                server.target], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=slave, text=True, timeout=60)
        finally:
            os.close(slave)
        err = b''
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the slave side is closed and everything was read
                break
            if not chunk:
                break
            err += chunk
        self.assertEqual(p.returncode, 0, (p.stdout, err))
        self.assertRegex(err.decode(), r'\[ +\d+\.\ds\] .* verified')
        self.assertNotRegex(p.stdout, r'\[ +\d+\.\ds\]')   # stdout keeps the report only
        self.assertIn('each loss makes a flow wait that long', p.stdout)


# ---- the real daemon ------------------------------------------------------------------------

def daemon_udp_support():
    """None if tcpechod accepts UDP listeners, else why not (its --check-config output)."""
    with tempfile.TemporaryDirectory(prefix='tcpecho-udp-check-') as tmp:
        conf = os.path.join(tmp, 'udp.toml')
        with open(conf, 'w') as f:
            f.write('workers = 1\n[[listen]]\nname = "udp"\naddress = "127.0.0.1"\nport = 0\n'
                    'proto = "udp"\nudp_rate_limit = 0\n')
        p = subprocess.run([TCPECHOD, '--check-config', '-c', conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        if p.returncode == 0:
            return None
        return 'tcpechod --check-config rejects proto = "udp" (exit %d): %s' % (
            p.returncode, p.stdout.strip()[-300:])


DAEMON_UDP_MISSING = daemon_udp_support()


@unittest.skipIf(DAEMON_UDP_MISSING, 'tcpechod has no UDP listeners yet: %s' % DAEMON_UDP_MISSING)
class AgainstDaemon(UdpTestCase):

    @classmethod
    def setUpClass(cls):
        listeners = [{'name': 'udp', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}]
        if IPV6:
            listeners.append({'name': 'udp6', 'proto': 'udp', 'address': '::1',
                              'extra': ['udp_rate_limit = 0']})
        cls.daemon = Daemon(listeners, workers=2)
        cls.addClassCleanup(cls.daemon.kill)
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        if rc != 0:
            raise AssertionError('tcpechod exited with %r after SIGTERM:\n%s'
                                 % (rc, cls.daemon.log()[-3000:]))

    def probe(self, listener, *args, **kw):
        return udp_probe(self.daemon.target(listener), '--timeout', '5', *args, **kw)

    def test_sizes_over_ipv4(self):
        for size in (0, 1, 23, 24, 1472, 65507):
            with self.subTest(size=size):
                self.assertUdpOk(self.probe('udp', '-n', 50, '-s', size), 50, size=size)

    def test_65508_over_ipv4_is_refused_by_the_kernel(self):
        run = self.probe('udp', '-n', 1, '-s', 65508, json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn('tcpecho-probe: the kernel refused a 65508-byte datagram to %s: Message too '
                      'long (the largest UDP payload is 65507 bytes over IPv4, 65527 over IPv6)'
                      % self.daemon.target('udp'), run.stderr)

    @unittest.skipUnless(IPV6, 'no IPv6 loopback (::1)')
    def test_sizes_over_ipv6(self):
        self.assertTrue(self.daemon.target('udp6').startswith('[::1]:'))
        for size in (0, 1, 1472, 65527):
            with self.subTest(size=size):
                self.assertUdpOk(self.probe('udp6', '-n', 20, '-s', size), 20, size=size)
        run = self.probe('udp6', '-n', 1, '-s', 65528, json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn('the kernel refused a 65528-byte datagram', run.stderr)

    def test_many_flows_across_workers(self):
        run = self.probe('udp', '-n', 100, '-s', 512, '-c', 100, '-T', 2)
        self.assertUdpOk(run, 10000, size=512)
        flows = run.doc['udp']['flows']
        self.assertEqual(len(flows), 100)
        self.assertEqual(len({f['local'] for f in flows}), 100)
        self.assertTrue(all(f['received'] == 100 for f in flows), run)

    def test_stream_workload(self):
        # tcpechod's sockets keep the default receive buffer (208 KiB, about 90 full-size
        # datagrams): 4 windows of 8 KiB stay well below it, so nothing may be lost.
        run = self.probe('udp', '-n', 3000, '-s', '1-1472', '--workload', 'stream',
                         '--window', '8K', '-c', 4, '-T', 2)
        self.assertUdpOk(run, 12000)

    def test_size_range_pingpong(self):
        self.assertUdpOk(self.probe('udp', '-n', 300, '-s', '0-2000', *SEED), 300)

    def test_rate_against_the_daemon(self):
        run = self.probe('udp', '-t', '1s', '--rate', 500, '-c', 5, '-s', 200)
        self.assertEqual(run.rc, 0, run)
        sent = run.doc['udp']['sent']
        self.assertGreaterEqual(sent, 450, run)
        self.assertLessEqual(sent, 505, run)
        self.assertCounts(run, sent=sent, received=sent)


if __name__ == '__main__':
    main()
