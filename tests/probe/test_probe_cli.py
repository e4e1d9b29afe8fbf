#!/usr/bin/env python3
"""tcpecho-probe's command line and output: usage errors, the JSON document, human output
(seed, failure report), reproducible seeds, and the bytes it puts on the wire in each mode
(recorded by a correct echo server written for the tests)."""

import os
import re
import struct
import tempfile
import unittest

import faulty_servers as fs
from probe_common import ProbeTestCase, hex_bytes, main, run_probe

TARGET = '127.0.0.1:9'   # never contacted: usage errors stop before connecting


class Usage(ProbeTestCase):

    BAD = [
        ['--mode', 'bogus', TARGET],
        ['--mode', 'raw', '--size', '0', TARGET],
        ['-s', '65M', TARGET],
        ['-s', '10-5', TARGET],
        ['-s', '1K-', TARGET],
        [],                                    # no target
        ['127.0.0.1:1', '127.0.0.1:2'],       # two targets
        ['--count', '1', '--time', '1', TARGET],
        ['-n', '0', TARGET],
        ['-n', '1x', TARGET],
        ['-t', '0', TARGET],
        ['-c', '0', TARGET],
        ['-T', '0', TARGET],
        ['--workload', 'bogus', TARGET],
        ['--window', '1K', TARGET],            # pingpong has no window
        ['--workload', 'stream', '--window', '0', TARGET],
        ['--rate', '0', TARGET],
        ['--rate', 'abc', TARGET],
        ['--split', '0', TARGET],
        ['--split-delay', 'x', TARGET],
        ['--seed', 'abc', TARGET],
        ['--recv', 'foo', TARGET],
        ['--recv', 'lowat=0', TARGET],
        ['--timeout', '0', TARGET],
        ['--frame-size', '100', TARGET],       # raw mode has no frames
        ['--mode', 'fixed', '--frame-size', '0', TARGET],
        ['--mode', 'fixed', '--frame-size', '4096', '-s', '4000', TARGET],
        ['--bogus', TARGET],
    ]

    def test_usage_errors_exit_2(self):
        for args in self.BAD:
            for json_flag in (False, True):
                with self.subTest(args=args, json=json_flag):
                    run = run_probe((['-J'] if json_flag else []) + args, json_output=False)
                    self.assertEqual(run.rc, 2, run)
                    self.assertRegex(run.stderr, r'^tcpecho-probe: \S', run)
                    self.assertIn("Try 'tcpecho-probe --help'", run.stderr, run)
                    self.assertEqual(run.stdout, '', run)   # no run, so no JSON document

    def test_port_out_of_range_is_a_usage_error(self):
        for port in ('65536', '99999'):
            with self.subTest(port=port):
                run = run_probe(['-n', '1', '--timeout', '1', '127.0.0.1:' + port],
                                json_output=False)
                self.assertEqual(run.rc, 2, run)

    def test_help_and_version(self):
        run = run_probe(['--help'], json_output=False)
        self.assertEqual(run.rc, 0, run)
        self.assertIn('Usage: tcpecho-probe', run.stdout)
        for opt in ('--mode', '--recv', '--split', '--seed', '--timeout', '--json'):
            self.assertIn(opt, run.stdout)
        run = run_probe(['--version'], json_output=False)
        self.assertEqual(run.rc, 0, run)
        self.assertRegex(run.stdout, r'^tcpecho-probe \d+\.\d+\.\d+\n$')


class Output(ProbeTestCase):

    def serve(self, server):
        self.addCleanup(server.close)
        return server

    def read_hdr(self, path):
        """Rows (value, percentile, total count) and footers of a --hdr-out file, checked for
        HdrHistogram's percentile-distribution layout."""
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0].split(), ['Value', 'Percentile', 'TotalCount', '1/(1-Percentile)'])
        self.assertEqual(lines[1], '')
        rows = [tuple(float(x) for x in line.split()[:3]) for line in lines[2:] if not line.startswith('#')]
        footers = [line for line in lines if line.startswith('#[')]
        self.assertEqual(len(footers), 3, lines[-4:])
        self.assertTrue(footers[0].startswith('#[Mean    = ') and 'StdDeviation   = ' in footers[0], footers)
        self.assertTrue(footers[1].startswith('#[Max     = ') and 'Total count    = ' in footers[1], footers)
        self.assertEqual(rows[-1][1], 1.0, 'the last row is at percentile 1.0')
        for a, b in zip(rows, rows[1:]):
            self.assertLessEqual(a[0], b[0])
            self.assertLess(a[1], b[1])
            self.assertLessEqual(a[2], b[2])
        total = int(footers[1].split('Total count    =')[1].strip(' ]'))
        self.assertEqual(int(rows[-1][2]), total)
        return rows, total

    def test_hdr_out_counts_every_verified_message(self):
        server = self.serve(fs.EchoServer())
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'latency.hgrm')
            run = run_probe(['-n', 300, '-c', 3, '-s', '1-2000', '--hdr-out', path, server.target])
            self.assertOk(run)
            rows, total = self.read_hdr(path)
            self.assertEqual(total, run.doc['totals']['messages_verified'])
            self.assertEqual(total, 900)
            self.assertGreater(len(rows), 10)
            # A failed run still writes what it verified.
            bad = run_probe(['-n', 50, '--hdr-out', path, self.serve(fs.FlipServer(5000)).target])
            self.assertEqual(bad.rc, 1, bad)
            _, total = self.read_hdr(path)
            self.assertEqual(total, bad.doc['totals']['messages_verified'])

    def test_hdr_out_that_cannot_be_written_is_a_usage_error(self):
        run = run_probe(['-n', 1, '--hdr-out', '/nonexistent-dir/x.hgrm', '127.0.0.1:9'], json_output=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn('--hdr-out /nonexistent-dir/x.hgrm: cannot write it: No such file or directory', run.stderr)

    def test_json_document_keys(self):
        server = self.serve(fs.EchoServer())
        ok = run_probe(['-n', 20, '-c', 2, '--seed', 1, server.target])
        self.assertOk(ok)
        bad = run_probe(['-n', 20, '--seed', 1, self.serve(fs.FlipServer(100)).target])
        self.assertEqual(bad.rc, 1, bad)
        for run in (ok, bad):
            d = run.doc
            self.assertEqual(set(d), {'tool', 'version', 'target', 'options', 'result', 'errors',
                                      'totals', 'latency_us', 'recv', 'connections'})
            self.assertEqual(d['tool'], 'tcpecho-probe')
            self.assertEqual(set(d['target']), {'host', 'port', 'address'})
            self.assertEqual(set(d['options']), {
                'mode', 'size_min', 'size_max', 'count', 'time_s', 'connections', 'threads',
                'workload', 'window', 'rate', 'split', 'split_delay_us', 'seed', 'recv',
                'timeout_s'})
            self.assertEqual(set(d['result']),
                             {'status', 'exit_code', 'failed_connections', 'interrupted'})
            self.assertIs(d['result']['interrupted'], False)
            self.assertEqual(set(d['totals']), {
                'seconds', 'messages_sent', 'messages_verified', 'bytes_sent',
                'bytes_verified', 'messages_per_second', 'bytes_per_second', 'send_calls'})
            self.assertEqual(set(d['latency_us']), {'count', 'min', 'mean', 'p50', 'p90', 'p99',
                                                    'p99_9', 'max', 'from_scheduled_time'})
            self.assertEqual(set(d['recv']), {'calls', 'eagain', 'lowat_changes',
                                              'calls_per_message', 'size', 'size_histogram',
                                              'most_frequent_sizes'})
            for c in d['connections']:
                self.assertEqual(set(c), {'id', 'local', 'messages_sent', 'messages_verified',
                                          'bytes_sent', 'bytes_verified', 'recv_calls',
                                          'first_recv_sizes', 'tcp_info', 'error'})
            for e in d['errors']:
                self.assertEqual(set(e), {'connection', 'kind', 'exit_code', 'message',
                                          'offset', 'detail', 'expected', 'received'})
        self.assertEqual(len(ok.doc['connections']), 2)
        self.assertEqual(ok.doc['options']['seed'], 1)
        hist = ok.doc['recv']['size_histogram']
        self.assertEqual(sum(b['count'] for b in hist), ok.doc['recv']['calls'])
        for b in hist:
            self.assertLessEqual(b['min'], b['max'])

    def test_json_with_progress_is_still_one_document(self):
        server = self.serve(fs.EchoServer())
        run = run_probe(['--progress', '-t', '1500ms', '--rate', 200, '-s', 64, server.target])
        self.assertOk(run)

    def test_seed_is_printed_and_repeats_the_run(self):
        server = self.serve(fs.EchoServer())
        run = run_probe(['-n', 20, '-s', '1-3000', server.target], json_output=False)
        self.assertEqual(run.rc, 0, run)
        seeds = re.findall(r'\bseed (\d+)', run.stdout)
        self.assertGreaterEqual(len(seeds), 2, run)     # the header and the RESULT line
        self.assertEqual(len(set(seeds)), 1, run)
        self.assertRegex(run.stdout, r'RESULT: OK.*\(seed %s\)' % seeds[0])
        again = run_probe(['-n', 20, '-s', '1-3000', '--seed', seeds[0], server.target])
        self.assertOk(again)
        self.assertEqual(again.doc['options']['seed'], int(seeds[0]))
        first, second = server.wait_done(2)
        self.assertEqual(first.rx, second.rx)     # the same bytes on the wire

    def test_given_seed_is_printed(self):
        server = self.serve(fs.EchoServer())
        run = run_probe(['-n', 5, '--seed', 12345, server.target], json_output=False)
        self.assertEqual(run.rc, 0, run)
        self.assertIn('seed 12345', run.stdout.splitlines()[0])
        self.assertIn('RESULT: OK', run.stdout)

    def test_same_seed_same_bytes_different_seed_different_bytes(self):
        server = self.serve(fs.EchoServer())
        args = ['-n', 50, '-s', '1-5000', '-c', 2, '--workload', 'stream']
        for seed in (777, 777, 778):
            self.assertOk(run_probe(args + ['--seed', seed, server.target]))
        recs = server.wait_done(6)
        runs = [sorted(bytes(r.rx) for r in recs[i:i + 2]) for i in (0, 2, 4)]
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0][0], runs[2][0])
        self.assertNotEqual(runs[0][0][:64], runs[2][0][:64])
        # Two connections of one run do not send the same bytes.
        self.assertNotEqual(runs[0][0][:64], runs[0][1][:64])

    def test_same_seed_same_failure(self):
        args = ['-n', 5, '-s', '100-3000', '--seed', 31337]
        a = run_probe(args + [self.serve(fs.FlipServer(2222)).target])
        b = run_probe(args + [self.serve(fs.FlipServer(2222)).target])
        for run in (a, b):
            self.assertFailedWith(run, 1, 'mismatch', offset=2222)
        for key in ('message', 'offset', 'detail', 'expected', 'received'):
            self.assertEqual(a.errors[0][key], b.errors[0][key])

    def test_human_failure_report(self):
        args = ['-n', 5, '-s', 2000, '--seed', 5]
        run = run_probe(args + [self.serve(fs.FlipServer(3000)).target], json_output=False)
        self.assertEqual(run.rc, 1, run)
        err = run.stderr
        self.assertRegex(err, r'connection 0\b.*message 1\b.*stream offset 3000\b.*mismatch',
                         run)
        exp = re.search(r'^\s*expected:\s*(.+)$', err, re.M)
        got = re.search(r'^\s*received:\s*(.+)$', err, re.M)
        self.assertTrue(exp and got, run)
        self.assertIn('--seed 5', err, run)
        self.assertIn('RESULT: FAILED (exit 1)', run.stdout, run)
        # The same dumps as in the JSON report of the same run.
        j = run_probe(args + [self.serve(fs.FlipServer(3000)).target])
        self.assertEqual(exp.group(1).strip(), j.errors[0]['expected'])
        self.assertEqual(got.group(1).strip(), j.errors[0]['received'])
        e, mark = hex_bytes(j.errors[0]['expected'])
        g, gmark = hex_bytes(j.errors[0]['received'])
        self.assertEqual(mark, gmark)
        self.assertEqual(e[mark] ^ 0x5A, g[mark])    # FlipServer's default mask
        self.assertEqual(e[:mark] + e[mark + 1:], g[:mark] + g[mark + 1:])

    def test_human_failure_report_for_missing_bytes(self):
        run = run_probe(['-n', 5, '-s', 2000, self.serve(fs.CloseEarlyServer(2500)).target],
                        json_output=False)
        self.assertEqual(run.rc, 1, run)
        self.assertRegex(run.stderr, r'connection 0\b.*message 1\b.*stream offset 2500\b.*'
                                     r'missing', run)
        self.assertRegex(run.stderr, r'(?m)^\s*expected:\s*\[[0-9a-f]{2}\]', run)
        self.assertRegex(run.stderr, r'(?m)^\s*received:\s*\[EOF\]', run)

    def test_quiet(self):
        run = run_probe(['-q', '-n', 10, self.serve(fs.EchoServer()).target], json_output=False)
        self.assertEqual((run.rc, run.stdout, run.stderr), (0, '', ''), run)
        run = run_probe(['-q', '-n', 10, self.serve(fs.FlipServer(10)).target],
                        json_output=False)
        self.assertEqual(run.rc, 1, run)
        self.assertEqual(run.stdout, '', run)
        self.assertIn('stream offset 10', run.stderr, run)


class WireFormat(ProbeTestCase):
    """What the probe sends, as a correct echo server records it."""

    def record(self, *args):
        server = fs.EchoServer()
        self.addCleanup(server.close)
        run = run_probe(list(args) + [server.target])
        self.assertOk(run)
        return bytes(server.wait_done()[0].rx), run

    def test_raw(self):
        rx, run = self.record('-n', 30, '-s', 777)
        self.assertEqual(len(rx), 30 * 777)
        self.assertEqual(run.doc['totals']['bytes_sent'], len(rx))

    def test_fixed(self):
        rx, _ = self.record('--mode', 'fixed', '--frame-size', '1000', '-n', 30)
        self.assertEqual(len(rx), 30 * 1000)

    def test_length(self):
        rx, run = self.record('--mode', 'length', '-n', 200, '-s', '10-3000', '--seed', 2)
        sizes, pos = [], 0
        while pos < len(rx):
            (n,) = struct.unpack('>I', rx[pos:pos + 4])
            sizes.append(n)
            pos += 4 + n
        self.assertEqual(pos, len(rx))
        self.assertEqual(len(sizes), 200)
        self.assertTrue(all(10 <= n <= 3000 for n in sizes), sizes)
        self.assertGreater(len(set(sizes)), 100)     # drawn per message
        self.assertEqual(run.doc['totals']['bytes_sent'], len(rx))

    def test_line(self):
        rx, _ = self.record('--mode', 'line', '-n', 200, '-s', '1-3000', '--seed', 3,
                            '--workload', 'stream')
        self.assertTrue(rx.endswith(b'\n'))
        lines = rx[:-1].split(b'\n')
        self.assertEqual(len(lines), 200)             # no '\n' inside a payload
        self.assertTrue(all(1 <= len(x) <= 3000 for x in lines))

    def test_split_and_workload_do_not_change_the_bytes(self):
        base = ['--mode', 'length', '-n', 50, '-s', '10-2000', '--seed', 9]
        a, _ = self.record(*base)
        b, run = self.record(*base, '--split', 7, '--split-delay', '0')
        c, _ = self.record(*base, '--workload', 'stream', '--window', '3000')
        self.assertEqual(a, b)
        self.assertEqual(a, c)
        self.assertEqual(run.doc['totals']['send_calls'], 50 * 7)


if __name__ == '__main__':
    main()
