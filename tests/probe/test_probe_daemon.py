#!/usr/bin/env python3
"""tcpecho-probe against the real tcpechod in every mode: workloads, --split, pipelining,
every --recv mode, several connections, --time/--rate, IPv6, and the daemon's clean exit."""

import json
import signal
import subprocess
import time
import unittest

from probe_common import (PROBE, Daemon, ProbeTestCase, ipv6_loopback_works, kill_process,
                          main, run_probe)

FRAME = 4096
IPV6 = ipv6_loopback_works()

LISTENERS = [
    {'name': 'raw', 'mode': 'raw'},
    {'name': 'fixed', 'mode': 'fixed', 'frame_size': FRAME},
    {'name': 'fixed64k', 'mode': 'fixed', 'frame_size': 65536},
    {'name': 'fixed512k', 'mode': 'fixed', 'frame_size': 524288},
    {'name': 'length', 'mode': 'length'},
    {'name': 'line', 'mode': 'line'},
] + ([{'name': 'raw6', 'mode': 'raw', 'address': '::1'}] if IPV6 else [])

# Per mode: the probe's framing options, and the bytes framing adds to each message.
MODES = {
    'raw': (['--mode', 'raw'], 0),
    'fixed': (['--mode', 'fixed', '--frame-size', str(FRAME)], 0),
    'length': (['--mode', 'length'], 4),
    'line': (['--mode', 'line'], 1),
}


MODE_LIST = [(mode, margs, overhead) for mode, (margs, overhead) in MODES.items()]


def sizes(mode, spec):
    """-s for a mode: fixed mode's size is its frame size."""
    return [] if mode == 'fixed' else ['-s', spec]


class AgainstDaemon(ProbeTestCase):

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(LISTENERS)
        cls.addClassCleanup(cls.daemon.kill)
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        if rc != 0:
            raise AssertionError('tcpechod exited with %r after SIGTERM:\n%s'
                                 % (rc, cls.daemon.log()[-3000:]))

    def probe(self, listener, *args, timeout='10'):
        return run_probe(list(args) + ['--timeout', timeout, self.daemon.target(listener)])

    # ---- workloads ----------------------------------------------------------------------
    def test_pingpong_every_mode(self):
        n = 300
        for mode, margs, overhead in MODE_LIST:
            with self.subTest(mode=mode):
                size = FRAME if mode == 'fixed' else 1000
                run = self.probe(mode, *margs, *sizes(mode, '1000'), '-n', n)
                self.assertOk(run)
                t = run.doc['totals']
                self.assertEqual(t['messages_sent'], n, run)
                self.assertEqual(t['bytes_sent'], n * (size + overhead), run)
                self.assertEqual(t['send_calls'], n, run)
                self.assertEqual(run.doc['latency_us']['count'], n, run)
                self.assertGreater(run.doc['latency_us']['min'], 0, run)
                self.assertEqual(run.doc['options']['mode'], mode, run)
                self.assertEqual(run.doc['options']['workload'], 'pingpong', run)

    def test_pingpong_random_sizes(self):
        for mode, margs, overhead in MODE_LIST:
            with self.subTest(mode=mode):
                if mode == 'fixed':
                    continue
                run = self.probe(mode, *margs, '-s', '1-3000', '-n', 300)
                self.assertOk(run)
                o = run.doc['options']
                self.assertEqual((o['size_min'], o['size_max']), (1, 3000), run)
                t = run.doc['totals']
                self.assertGreater(t['bytes_sent'], 300 * (1 + overhead), run)
                self.assertLess(t['bytes_sent'], 300 * (3000 + overhead), run)

    def test_stream_pipelined_every_mode(self):
        # Thousands of small messages in flight: the echo of several comes back in one recv().
        n = 3000
        for mode, margs, overhead in MODE_LIST:
            with self.subTest(mode=mode):
                size = FRAME if mode == 'fixed' else 100
                run = self.probe(mode, *margs, *sizes(mode, '100'), '-n', n, '--workload', 'stream')
                self.assertOk(run)
                self.assertEqual(run.doc['totals']['messages_verified'], n, run)
                self.assertEqual(run.doc['totals']['bytes_verified'], n * (size + overhead), run)
                self.assertEqual(run.doc['options']['workload'], 'stream', run)
                self.assertGreater(run.doc['recv']['size']['max'], size + overhead, run)
                self.assertLess(run.doc['recv']['calls'], n, run)

    def test_stream_small_window_random_sizes(self):
        for mode, margs, _ in MODE_LIST:
            with self.subTest(mode=mode):
                run = self.probe(mode, *margs, *sizes(mode, '1-5000'), '-n', 1000,
                                 '--workload', 'stream', '--window', '8K')
                self.assertOk(run)
                self.assertEqual(run.doc['options']['window'], 8192, run)

    def test_split_every_mode(self):
        n = 40
        for mode, margs, _ in MODE_LIST:
            with self.subTest(mode=mode):
                run = self.probe(mode, *margs, *sizes(mode, '1000'), '-n', n, '--split', 4,
                                 '--split-delay', '200us')
                self.assertOk(run)
                self.assertEqual(run.doc['totals']['send_calls'], 4 * n, run)
                self.assertEqual(run.doc['options']['split'], 4, run)
                self.assertEqual(run.doc['options']['split_delay_us'], 200, run)

    def test_split_into_more_pieces_than_bytes(self):
        """--split K cuts each message into min(K, its length) pieces: one byte each for the
        short ones (it used to refuse -s 1-70000 --split 3)."""
        n = 30
        for mode, margs, size, overhead in (('raw', [], 3, 0), ('length', ['--mode', 'length'], 1, 4),
                                            ('line', ['--mode', 'line'], 2, 1)):
            with self.subTest(mode=mode):
                run = self.probe(mode, *margs, '-s', size, '-n', n, '--split', 8, '--split-delay', '100us')
                self.assertOk(run)
                self.assertEqual(run.doc['totals']['send_calls'], (size + overhead) * n, run)
        run = self.probe('raw', '-s', '1-70000', '-n', 200, '--split', 3, '--split-delay', '0')
        self.assertOk(run)
        self.assertGreaterEqual(run.doc['totals']['send_calls'], 200, run)
        self.assertLessEqual(run.doc['totals']['send_calls'], 3 * 200 + 200, run)

    def test_slow_split_frame_is_not_a_stall(self):
        # A framed server echoes nothing until the frame is complete; sending it slowly in
        # pieces (3 x 400 ms > --timeout 1 s in total) is progress, not a stall.
        for mode in ('length', 'line'):
            with self.subTest(mode=mode):
                run = self.probe(mode, *MODES[mode][0], *sizes(mode, '100'), '-n', 2, '--split', 4,
                                 '--split-delay', '400ms', timeout='1s')
                self.assertOk(run)
                self.assertEqual(run.doc['options']['timeout_s'], 1, run)

    def test_split_stream_every_mode(self):
        n = 300
        for mode, margs, _ in MODE_LIST:
            with self.subTest(mode=mode):
                run = self.probe(mode, *margs, *sizes(mode, '100-2000'), '-n', n, '--split', 3,
                                 '--split-delay', '50us', '--workload', 'stream')
                self.assertOk(run)
                self.assertGreaterEqual(run.doc['totals']['send_calls'], 3 * n, run)

    def test_many_connections_every_mode(self):
        for mode, margs, _ in MODE_LIST:
            with self.subTest(mode=mode):
                for workload in ('pingpong', 'stream'):
                    with self.subTest(workload=workload):
                        run = self.probe(mode, *margs, *sizes(mode, '1-2000'), '-n', 200, '-c', 8,
                                         '-T', 2, '--workload', workload)
                        self.assertOk(run)
                        conns = run.doc['connections']
                        self.assertEqual(sorted(c['id'] for c in conns), list(range(8)), run)
                        self.assertEqual(len({c['local'] for c in conns}), 8, run)
                        for c in conns:
                            self.assertEqual(c['messages_verified'], 200, run)
                        self.assertEqual(run.doc['totals']['messages_verified'], 1600, run)
                        self.assertEqual(run.doc['totals']['bytes_verified'],
                                         sum(c['bytes_verified'] for c in conns), run)

    def test_200_connections_on_2_threads(self):
        run = self.probe('length', '--mode', 'length', '-s', '1-2000', '-n', 20, '-c', 200,
                         '-T', 2)
        self.assertOk(run)
        self.assertEqual(len(run.doc['connections']), 200, run)
        self.assertEqual(run.doc['totals']['messages_verified'], 4000, run)

    # ---- recv modes ---------------------------------------------------------------------
    def test_every_recv_mode_every_mode(self):
        for mode, margs, _ in MODE_LIST:
            with self.subTest(mode=mode):
                for how in ('loop', 'waitall', 'lowat=512', 'once'):
                    with self.subTest(recv=how):
                        run = self.probe(mode, *margs, *sizes(mode, '1000'), '-n', 100,
                                         '--recv', how)
                        self.assertOk(run)
                        self.assertEqual(run.doc['options']['recv'], how, run)
                for how in ('loop', 'waitall', 'lowat=512'):
                    with self.subTest(recv=how, workload='stream'):
                        run = self.probe(mode, *margs, *sizes(mode, '1-3000'), '-n', 500,
                                         '--recv', how, '--workload', 'stream')
                        self.assertOk(run)

    def test_waitall_one_recv_per_large_message(self):
        """MSG_WAITALL: one recv() per message on loopback, even for 64 KiB..512 KiB."""
        cases = [('raw', ['--mode', 'raw', '-s', '64K-512K'], 20),
                 ('fixed64k', ['--mode', 'fixed', '--frame-size', '64K'], 20),
                 ('fixed512k', ['--mode', 'fixed', '--frame-size', '512K'], 10),
                 ('length', ['--mode', 'length', '-s', '64K-512K'], 20),
                 ('line', ['--mode', 'line', '-s', '64K-512K'], 20)]
        for listener, args, n in cases:
            with self.subTest(listener=listener):
                run = self.probe(listener, *args, '-n', n, '--recv', 'waitall')
                self.assertOk(run)
                cpm = run.doc['recv']['calls_per_message']
                self.assertEqual(cpm['max'], 1, run)
                self.assertEqual(cpm['mean'], 1, run)
                self.assertEqual(run.doc['recv']['calls'], n, run)
                self.assertGreaterEqual(run.doc['recv']['size']['min'], 65536, run)

    def test_lowat_above_the_message_size(self):
        # The mark can never be reached by one message: the probe must lower it, not hang.
        for workload in ('pingpong', 'stream'):
            with self.subTest(workload=workload):
                run = self.probe('raw', '-s', '1000', '-n', 20, '--recv', 'lowat=1M',
                                 '--workload', workload)
                self.assertOk(run)

    def test_once_512k_raw_reports_short_read(self):
        """The classic naive client against the real daemon. Whether one recv() gets a whole
        512 KiB message is timing (measured on loopback: the first short read came at message
        0 in 197 of 200 runs of -n 50, and in 3 runs none came at all; it once came only at
        message 2 of 5, which an earlier version of this test took for a failure). So: up to
        five runs of 50 messages until one has a short read, and that one must be reported
        exactly where it happened. (A short read on every message: probe-faults, against a
        server that echoes in 7-byte pieces.)"""
        M = 524288
        for _ in range(5):
            run = self.probe('raw', '--mode', 'raw', '-s', '512K', '-n', 50, '--recv', 'once')
            if run.rc != 0:
                break
            self.assertOk(run)   # every recv() got a whole message: correct, and no short read
        err = self.assertFailedWith(run, 1, 'short_read')
        k = err['message']
        conn = run.doc['connections'][0]
        first = conn['first_recv_sizes']
        # Messages before it were read whole, each in one call; then one recv() fell short.
        self.assertEqual(run.doc['totals']['messages_verified'], k, run)
        self.assertGreater(err['offset'], k * M, run)
        self.assertLess(err['offset'], (k + 1) * M, run)
        self.assertEqual(conn['bytes_verified'], err['offset'], run)
        if k < len(first):   # the probe keeps the first 8 recv() sizes
            self.assertEqual(first[:k], [M] * k, run)
            self.assertEqual(err['offset'], k * M + first[k], run)

    def test_loop_reads_512k_whatever_recv_returns(self):
        """--recv loop reads until each message is complete, in as many calls as it takes. How
        many is timing, not something to assert (measured on loopback: 1.01 calls per message
        on average, 4 at most; an earlier version of this test required more than one)."""
        run = self.probe('raw', '--mode', 'raw', '-s', '512K', '-n', 50, '--recv', 'loop')
        self.assertOk(run)
        self.assertEqual(run.doc['totals']['bytes_verified'], 50 * 524288, run)
        self.assertGreaterEqual(run.doc['recv']['calls'], 50, run)

    def test_every_recv_mode_measures_latency(self):
        # Blocking reads (waitall) once reported 0 us: the clock was read before the call.
        for how in ('loop', 'waitall', 'lowat=4K', 'once'):
            with self.subTest(recv=how):
                run = self.probe('raw', '-s', '4K', '-n', 50, '--recv', how)
                self.assertOk(run)
                lat = run.doc['latency_us']
                self.assertEqual(lat['count'], 50, run)
                self.assertGreater(lat['min'], 0, run)
                self.assertLessEqual(lat['min'], lat['p50'], run)
                self.assertLessEqual(lat['p50'], lat['max'], run)

    # ---- time, rate, seeds, details -----------------------------------------------------
    def test_time_and_rate(self):
        run = self.probe('raw', '-t', '500ms', '--rate', 1000, '-s', 100)
        self.assertOk(run)
        o, t = run.doc['options'], run.doc['totals']
        self.assertIsNone(o['count'], run)
        self.assertEqual(o['time_s'], 0.5, run)
        self.assertTrue(run.doc['latency_us']['from_scheduled_time'], run)
        self.assertGreaterEqual(t['seconds'], 0.45, run)
        self.assertLess(t['seconds'], 5, run)
        self.assertGreater(t['messages_sent'], 250, run)
        self.assertLess(t['messages_sent'], 560, run)

    def test_same_seed_same_sizes(self):
        args = ['--mode', 'length', '-s', '1-5000', '-n', 100]
        a = self.probe('length', *args, '--seed', 99)
        b = self.probe('length', *args, '--seed', 99)
        c = self.probe('length', *args, '--seed', 100)
        for run in (a, b, c):
            self.assertOk(run)
        self.assertEqual(a.doc['options']['seed'], 99)
        self.assertEqual(a.doc['totals']['bytes_sent'], b.doc['totals']['bytes_sent'])
        self.assertNotEqual(a.doc['totals']['bytes_sent'], c.doc['totals']['bytes_sent'])

    def test_tcp_info_and_connection_details(self):
        run = self.probe('raw', '-n', 10, '-c', 2)
        self.assertOk(run)
        port = self.daemon.ports['raw']
        self.assertEqual(run.doc['target']['address'], '127.0.0.1:%d' % port, run)
        for c in run.doc['connections']:
            self.assertTrue(c['local'].startswith('127.0.0.1:'), run)
            self.assertEqual(c['recv_calls'], 10, run)
            self.assertEqual(c['first_recv_sizes'][:8], [1024] * 8, run)
            info = c['tcp_info']
            self.assertIsNotNone(info, run)
            for key in ('mss', 'rcv_mss', 'advmss', 'rtt_us', 'rttvar_us', 'snd_cwnd',
                        'total_retrans', 'reordering', 'rcv_space'):
                self.assertIn(key, info, run)
            self.assertGreater(info['mss'], 0, run)

    def test_sigint_stops_early_and_checks_what_was_sent(self):
        argv = [PROBE, '-J', '-t', '30', '-c', '2', '--workload', 'stream',
                self.daemon.target('length'), '--mode', 'length', '-s', '1-3000']
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(kill_process, proc)
        time.sleep(0.7)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        self.assertEqual(proc.returncode, 0, err)
        doc = json.loads(out)
        self.assertTrue(doc['result']['interrupted'], doc['result'])
        self.assertEqual(doc['result']['status'], 'ok', doc['result'])
        t = doc['totals']
        self.assertGreater(t['messages_sent'], 0, t)
        self.assertEqual(t['messages_verified'], t['messages_sent'], t)
        self.assertEqual(t['bytes_verified'], t['bytes_sent'], t)
        self.assertLess(t['seconds'], 10, t)

    @unittest.skipUnless(IPV6, '::1 is not usable here')
    def test_ipv6(self):
        port = self.daemon.ports['raw6']
        run = self.probe('raw6', '-n', 100, '-s', '1-3000', '--workload', 'stream')
        self.assertOk(run)
        self.assertEqual(run.doc['target']['address'], '[::1]:%d' % port, run)
        self.assertTrue(run.doc['connections'][0]['local'].startswith('[::1]:'), run)


class DaemonLifecycle(ProbeTestCase):

    def test_probe_then_sigterm_exits_0(self):
        daemon = Daemon([{'name': 'echo', 'mode': 'raw'}], workers=1)
        self.addCleanup(daemon.kill)
        daemon.start()
        self.assertOk(run_probe(['-n', 50, '-c', 2, daemon.target('echo')]))
        self.assertEqual(daemon.stop(), 0, daemon.log())
        # The daemon is gone: now the port refuses.
        run = run_probe(['-n', 1, '--timeout', 1, daemon.target('echo')])
        self.assertFailedWith(run, 3, 'connect')


if __name__ == '__main__':
    main()
