#!/usr/bin/env python3
"""tcpecho-probe against deliberately faulty echo servers (faulty_servers.py): every fault
must fail the run with the right exit status, error kind and stream offset; the offset a
data fault must be reported at is computed by the server from the bytes it really received
and sent."""

import os
import socket

import faulty_servers as fs
from probe_common import ProbeTestCase, hex_bytes, main, run_probe

MAN_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'man', 'tcpecho-probe.1')


class FaultTestCase(ProbeTestCase):

    def serve(self, server):
        self.addCleanup(server.close)
        return server

    def probe(self, server, *args):
        return run_probe(list(args) + [server.target])

    def assertDumpsMatch(self, err, rec):
        """The hex dumps show the real bytes around the offset: expected from what the
        server received (= what the probe sent), received from what the server sent."""
        off = err['offset']
        exp, mark = hex_bytes(err['expected'])
        self.assertIsNotNone(mark, err)
        self.assertEqual(exp, bytes(rec.rx[off - mark:off - mark + len(exp)]), err)
        if err['received'] not in ('[EOF]', '[nothing]', ''):
            got, gmark = hex_bytes(err['received'])
            self.assertEqual(gmark, mark, err)
            self.assertEqual(got, bytes(rec.tx[off - mark:off - mark + len(got)]), err)

    def check_mismatch(self, server, *args):
        run = self.probe(server, *args)
        err = self.assertFailedWith(run, 1, 'mismatch')
        rec = server.wait_done()[0]
        first = rec.first_difference()
        self.assertIsNotNone(first, 'the fault did not change the echo; rx %d, tx %d bytes'
                             % (len(rec.rx), len(rec.tx)))
        self.assertEqual(err['offset'], first, run)
        self.assertNotEqual(rec.tx[first], rec.rx[first])
        self.assertDumpsMatch(err, rec)
        self.assertEqual(run.doc['connections'][0]['bytes_verified'], first, run)
        return run, err, rec


class DataFaults(FaultTestCase):
    """flip / drop / dup / swap -> exit 1, mismatch at the first differing stream offset."""

    SIZE = 2000
    # In pingpong the probe sends the next message only when this one is back, so a fault
    # that holds back bytes must lie inside one message, with more of it following.
    PINGPONG = ['-n', '5', '-s', str(SIZE), '--seed', '7', '--timeout', '2']
    # A fault that holds back bytes must hold back less than the window, or the probe waits.
    STREAM = ['-n', '200', '-s', '1-4000', '--workload', 'stream', '--window', '16K',
              '--seed', '8', '--timeout', '2']

    def test_flip(self):
        for at in (0, 1, 1999, 2000, 3333, 9999):
            with self.subTest(at=at):
                run, err, _ = self.check_mismatch(self.serve(fs.FlipServer(at)), *self.PINGPONG)
                self.assertEqual(err['offset'], at)
                self.assertEqual(err['message'], at // self.SIZE, run)

    def test_flip_stream(self):
        self.check_mismatch(self.serve(fs.FlipServer(123457)), *self.STREAM)

    def test_drop(self):
        for at, n in ((0, 1), (2500, 10), (6100, 1000)):
            with self.subTest(at=at, length=n):
                self.check_mismatch(self.serve(fs.DropServer(at, n)), *self.PINGPONG)

    def test_drop_stream(self):
        for at, n in ((1, 1), (150001, 3000), (200000, 12000)):
            with self.subTest(at=at, length=n):
                self.check_mismatch(self.serve(fs.DropServer(at, n)), *self.STREAM)

    def test_dup(self):
        for at, n in ((0, 1), (2500, 10), (1990, 20), (5000, 100)):
            with self.subTest(at=at, length=n):
                self.check_mismatch(self.serve(fs.DupServer(at, n)), *self.PINGPONG)

    def test_dup_stream(self):
        self.check_mismatch(self.serve(fs.DupServer(99999, 5000)), *self.STREAM)

    def test_swap(self):
        for at, n in ((0, 1), (2500, 10), (6000, 500)):
            with self.subTest(at=at, length=n):
                self.check_mismatch(self.serve(fs.SwapServer(at, n)), *self.PINGPONG)

    def test_swap_stream(self):
        for at, n in ((1, 1), (77777, 4096), (100000, 6000)):
            with self.subTest(at=at, length=n):
                self.check_mismatch(self.serve(fs.SwapServer(at, n)), *self.STREAM)

    def test_first_difference_after_a_coinciding_byte(self):
        """With a known seed, place each fault where its first wrong byte happens to equal
        the expected one: the probe must report the real (later) first difference."""
        args = ['-n', '1', '-s', '6000', '--seed', '4242']
        echo = self.serve(fs.EchoServer())
        self.assertOk(self.probe(echo, *args))
        rx = bytes(echo.wait_done()[0].rx)
        self.assertEqual(len(rx), 6000)
        n = 16

        def coinciding(shift):
            for x in range(100, 5000):
                if rx[x] == rx[x + shift] and rx[x + 1] != rx[x + 1 + shift]:
                    return x
            self.skipTest('no coinciding byte in this payload')

        # dup: after rx[:x+n] comes rx[x] where rx[x+n] was expected.
        x = coinciding(n)
        _, err, _ = self.check_mismatch(self.serve(fs.DupServer(x, n)), *args)
        self.assertEqual(err['offset'], x + n + 1)
        # drop: rx[x+n] comes where rx[x] was expected.
        x = coinciding(n)
        _, err, _ = self.check_mismatch(self.serve(fs.DropServer(x, n)), *args)
        self.assertEqual(err['offset'], x + 1)
        # swap: rx[x+n] comes where rx[x] was expected.
        _, err, _ = self.check_mismatch(self.serve(fs.SwapServer(x, n)), *args)
        self.assertEqual(err['offset'], x + 1)

    def test_flip_in_length_header_and_payload(self):
        # length mode: message k starts at k*(4+SIZE); its header is 00 00 07 d0.
        for at in (2, 3, 4 + self.SIZE + 1, 2 * (4 + self.SIZE) + 100):
            with self.subTest(at=at):
                run, err, _ = self.check_mismatch(self.serve(fs.FlipServer(at)),
                                                  '--mode', 'length', *self.PINGPONG)
                self.assertEqual(err['message'], at // (4 + self.SIZE), run)

    def test_flip_in_line_payload_and_newline(self):
        for at in (5, self.SIZE, self.SIZE + 1 + self.SIZE):   # a payload byte, the '\n's
            with self.subTest(at=at):
                run, err, _ = self.check_mismatch(self.serve(fs.FlipServer(at, mask=0x41)),
                                                  '--mode', 'line', *self.PINGPONG)
                self.assertEqual(err['message'], at // (self.SIZE + 1), run)

    def test_fixed_mode_flip(self):
        self.check_mismatch(self.serve(fs.FlipServer(4096 * 3 + 17)), '--mode', 'fixed',
                            '--frame-size', '4096', '-n', '10', '--seed', '3')

    def test_mismatch_with_every_recv_mode(self):
        for how in ('loop', 'waitall', 'lowat=1000', 'once'):
            with self.subTest(recv=how):
                self.check_mismatch(self.serve(fs.FlipServer(2345)), '--recv', how,
                                    *self.PINGPONG)

    def test_split_sends(self):
        self.check_mismatch(self.serve(fs.DupServer(3001, 7)), '--split', '5',
                            '--split-delay', '200us', *self.PINGPONG)

    def test_every_connection_reports_its_own_offset(self):
        server = self.serve(fs.FlipServer(4321))
        run = self.probe(server, '-c', '3', '-T', '2', *self.PINGPONG)
        self.assertEqual(run.rc, 1, run)
        self.assertEqual(run.doc['result']['failed_connections'], 3, run)
        recs = server.wait_done(3)
        for c in range(3):
            err = self.assertFailedWith(run, 1, 'mismatch', connection=c)
            self.assertIn(err['offset'], [r.first_difference() for r in recs], run)
            self.assertEqual(err['offset'], 4321)


class StreamFaults(FaultTestCase):
    """Stall, close early, reset, extra bytes, no close after the half-close."""

    ARGS = ['-n', '5', '-s', '2000', '--seed', '11', '--timeout', '1']

    def test_stall(self):
        for at in (0, 3000, 4000):
            with self.subTest(at=at):
                server = self.serve(fs.StallServer(at))
                run = self.probe(server, *self.ARGS)
                err = self.assertFailedWith(run, 3, 'timeout', offset=at)
                self.assertEqual(err['message'], at // 2000, run)
                self.assertEqual(run.doc['connections'][0]['bytes_verified'], at, run)
                rec = server.wait_done()[0]
                self.assertEqual(len(rec.tx), at)
                self.assertDumpsMatch(err, rec)

    def test_stall_stream(self):
        server = self.serve(fs.StallServer(54321))
        run = self.probe(server, '-n', '100', '-s', '1-3000', '--workload', 'stream',
                         '--window', '20000', '--timeout', '500ms')
        self.assertFailedWith(run, 3, 'timeout', offset=54321)

    def test_close_early(self):
        for at in (0, 2999, 4000):
            with self.subTest(at=at):
                server = self.serve(fs.CloseEarlyServer(at))
                run = self.probe(server, *self.ARGS)
                err = self.assertFailedWith(run, 1, 'missing', offset=at)
                self.assertEqual(err['received'], '[EOF]', run)
                self.assertDumpsMatch(err, server.wait_done()[0])

    def test_close_early_stream(self):
        server = self.serve(fs.CloseEarlyServer(65537))
        run = self.probe(server, '-n', '100', '-s', '1-3000', '--workload', 'stream')
        self.assertFailedWith(run, 1, 'missing', offset=65537)

    def test_reset(self):
        for at in (0, 3000, 6000):
            with self.subTest(at=at):
                server = self.serve(fs.ResetServer(at))
                run = self.probe(server, *self.ARGS)
                self.assertFailedWith(run, 3, 'reset', offset=at)

    def test_reset_stream(self):
        server = self.serve(fs.ResetServer(100000))
        run = self.probe(server, '-n', '200', '-s', '1-3000', '--workload', 'stream',
                         '--window', '32K')
        self.assertFailedWith(run, 3, 'reset', offset=100000)

    def test_extra_after_half_close(self):
        server = self.serve(fs.ExtraServer(extra=b'\x00XYZ'))
        run = self.probe(server, *self.ARGS)
        err = self.assertFailedWith(run, 1, 'extra', offset=10000)
        got, mark = hex_bytes(err['received'])
        self.assertEqual((got, mark), (b'\x00XYZ', 0), run)
        self.assertEqual(run.doc['totals']['bytes_verified'], 10000, run)

    def test_extra_appended(self):
        for args, total in ((self.ARGS, 10000),
                            (['-n', '300', '-s', '100', '--workload', 'stream'], 30000)):
            with self.subTest(args=args):
                server = self.serve(fs.ExtraServer(extra=b'!!', appended_after=total))
                run = self.probe(server, *args)
                self.assertFailedWith(run, 1, 'extra', offset=total)

    def test_extra_bytes_mid_stream_are_a_mismatch(self):
        server = self.serve(fs.ExtraServer(extra=b'\xff', appended_after=2500))
        run = self.probe(server, *self.ARGS)
        rec = server.wait_done()[0]
        self.assertFailedWith(run, 1, 'mismatch', offset=rec.first_difference())

    def test_no_close_after_half_close(self):
        server = self.serve(fs.NeverCloseServer())
        run = self.probe(server, *self.ARGS)
        self.assertFailedWith(run, 3, 'timeout', offset=10000)
        self.assertEqual(run.doc['totals']['bytes_verified'], 10000, run)
        self.assertEqual(run.doc['totals']['messages_verified'], 5, run)

    def test_connection_refused(self):
        # A bound socket that does not listen: the port is ours, connecting gets RST.
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(('127.0.0.1', 0))
        run = run_probe(['-n', '1', '--timeout', '1', '127.0.0.1:%d' % s.getsockname()[1]])
        self.assertFailedWith(run, 3, 'connect')
        self.assertEqual(run.doc['totals']['bytes_sent'], 0, run)

    def test_verification_failure_wins_over_network_failure(self):
        class FlipFirstStallOthers(fs.EchoServer):
            def output(self, rx, rec):
                if rec.index == 0:
                    out = bytearray(rx)
                    if len(out) > 1500:
                        out[1500] ^= 1
                    return out
                return rx[:1500]
        server = self.serve(FlipFirstStallOthers())
        run = self.probe(server, '-c', '3', *self.ARGS)
        self.assertEqual(run.rc, 1, run)
        self.assertEqual(run.doc['result']['exit_code'], 1, run)
        self.assertEqual(run.doc['result']['failed_connections'], 3, run)
        kinds = sorted(e['kind'] for e in run.errors)
        self.assertEqual(kinds, ['mismatch', 'timeout', 'timeout'], run)
        self.assertEqual({e['offset'] for e in run.errors}, {1500}, run)
        # ... and --help and the man page say so (it once was not written down).
        help_text = ' '.join(run_probe(['--help'], json_output=False).stdout.split())
        self.assertIn('When connections fail in different ways, 1 wins', help_text)
        with open(MAN_PAGE) as f:
            self.assertIn('When connections fail in different ways, 1 wins', f.read())


class Fragmentation(FaultTestCase):
    """A correct server that echoes in 7-byte pieces: correct readers pass, --recv once
    fails with short_read (exit 1) and says where."""

    ARGS = ['-n', '3', '-s', '1500', '--seed', '5']

    def test_correct_readers_pass(self):
        for how in ('loop', 'lowat=700'):
            with self.subTest(recv=how):
                run = self.probe(self.serve(fs.FragmentingServer()), '--recv', how, *self.ARGS)
                self.assertOk(run)
                self.assertGreater(run.doc['recv']['calls_per_message']['max'], 1, run)

    def test_waitall_is_one_recv_per_message_even_in_pieces(self):
        run = self.probe(self.serve(fs.FragmentingServer()), '--recv', 'waitall', *self.ARGS)
        self.assertOk(run)
        self.assertEqual(run.doc['recv']['calls_per_message']['max'], 1, run)
        self.assertEqual(run.doc['recv']['size']['min'], 1500, run)

    def test_once_fails_with_short_read(self):
        run = self.probe(self.serve(fs.FragmentingServer()), '--recv', 'once', *self.ARGS)
        err = self.assertFailedWith(run, 1, 'short_read')
        self.assertEqual(err['message'], 0, run)
        self.assertGreater(err['offset'], 0, run)
        self.assertLess(err['offset'], 1500, run)
        self.assertEqual(run.doc['connections'][0]['first_recv_sizes'][0], err['offset'], run)


if __name__ == '__main__':
    main()
