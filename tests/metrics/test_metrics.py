#!/usr/bin/env python3
"""The Prometheus endpoint ([metrics]) against the real daemon, promtool and a real Prometheus.

- GET /metrics: the text format 0.0.4 with every family; counters exact (a probe's bytes and
  connections appear exactly in the sums over workers); `promtool check metrics` clean.
- Bad requests get their status (404, 405, 400) and a close; HEAD works.
- The attack surface is bounded: a 64 KiB request line gets 414 and a close, a client that
  sends nothing is closed after the request timeout, scrapers beyond 16 are closed at once and
  counted, and the echo keeps serving meanwhile.
- Socket activation: served from the passed socket named "metrics" (systemd-socket-activate).
- A real prometheus server scrapes it: up == 1, and a counter moves with traffic.
- Reload: the success gauge and its timestamp follow reloads; [metrics] changes wait.

Every process is stopped by PID; every wait is bounded.
"""

import json
import select
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'systemd'))
from systemd_common import ConfigDaemon, free_port, kill_process, run_probe  # noqa: E402

FAMILIES = ['tcpechod_connections_accepted_total', 'tcpechod_bytes_received_total', 'tcpechod_bytes_sent_total',
            'tcpechod_udp_datagrams_echoed_total', 'tcpechod_metrics_scrapes_total', 'tcpechod_connections_active',
            'tcpechod_buffer_memory_bytes', 'tcpechod_workers', 'tcpechod_build_info',
            'tcpechod_start_time_seconds', 'tcpechod_config_last_reload_success',
            'tcpechod_config_last_reload_timestamp_seconds']
SAMPLE_RE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def parse(text):
    """{(name, labels): value} of the samples, and the set of TYPE'd families."""
    samples, families = {}, set()
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            families.add(line.split()[2])
        elif line and not line.startswith('#'):
            m = SAMPLE_RE.match(line)
            assert m, 'not a sample line: %r' % line
            samples[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return samples, families


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def http(port, request, timeout=10.0):
    """Sends raw bytes, returns everything until the server closes (bounded)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b''.join(chunks)


class MetricsTestCase(unittest.TestCase):
    WORKERS = 2

    def setUp(self):
        self.daemon = ConfigDaemon(workers=self.WORKERS)
        self.addCleanup(self.daemon.cleanup)

    def config(self, metrics='[metrics]\nport = 0\n'):
        return ConfigDaemon.config_text([
            {'name': 'echo'},
            {'name': 'echo', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']},
        ], workers=self.WORKERS) + metrics

    def start(self, **kw):
        self.daemon.start(self.config(**kw))
        m = re.search(r'metrics listening name=\S+ address=127\.0\.0\.1:(\d+)', self.daemon.log())
        self.assertIsNotNone(m, self.daemon.log())
        return int(m.group(1))

    def scrape_when_served(self, port, timeout, pause=0.2):
        """Scrapes until one is answered (bounded); returns its samples and the failed tries."""
        end = time.monotonic() + timeout
        retries = 0
        while True:
            try:
                samples, _ = parse(self.scrape(port))
                return samples, retries
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > end:
                    raise
                retries += 1
                time.sleep(pause)

    def scrape(self, port):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers['Content-Type'], 'text/plain; version=0.0.4; charset=utf-8')
            return r.read().decode()


class ExpositionTests(MetricsTestCase):
    def test_families_and_exact_counters(self):
        mport = self.start()
        echo = self.daemon.port('echo')
        run = run_probe(['-c', '4', '-n', '100', '-s', '1000', '127.0.0.1:%d' % echo])
        self.assertEqual(run.rc, 0, run)
        run = run_probe(['--udp', '-c', '2', '-n', '50', '-s', '100', '127.0.0.1:%d' % self.daemon.port('echo', 'udp')])
        self.assertEqual(run.rc, 0, run)
        # The probe is done once its last echo is back; the daemon counts the close (and the
        # last send) a moment later: look until it has (bounded).
        end = time.monotonic() + 10
        while True:
            samples, families = parse(self.scrape(mport))
            settled = (total(samples, 'tcpechod_connections_active') == 0 and
                       total(samples, 'tcpechod_bytes_sent_total') == 4 * 100 * 1000)
            if settled or time.monotonic() > end:
                break
            time.sleep(0.1)
        for f in FAMILIES:
            self.assertIn(f, families)
        self.assertEqual(total(samples, 'tcpechod_bytes_received_total'), 4 * 100 * 1000)
        self.assertEqual(total(samples, 'tcpechod_bytes_sent_total'), 4 * 100 * 1000)
        self.assertEqual(total(samples, 'tcpechod_connections_accepted_total'), 4)
        self.assertEqual(total(samples, 'tcpechod_udp_datagrams_echoed_total'), 2 * 50)
        self.assertEqual(total(samples, 'tcpechod_connections_active'), 0)
        self.assertEqual(samples[('tcpechod_workers', '')], self.WORKERS)
        self.assertEqual(samples[('tcpechod_config_last_reload_success', '')], 1)
        self.assertTrue(any(n == 'tcpechod_build_info' and 'version="' in labels for n, labels in samples))
        workers = {labels for n, labels in samples if n == 'tcpechod_bytes_sent_total'}
        self.assertEqual(workers, {'{worker="%d"}' % i for i in range(self.WORKERS)})
        self.assertLess(abs(samples[('tcpechod_start_time_seconds', '')] - time.time()), 120)

    @unittest.skipUnless(shutil.which('promtool'), 'promtool (Debian package prometheus) not installed')
    def test_promtool_check_metrics_is_clean(self):
        mport = self.start()
        self.assertEqual(run_probe(['-n', '10', '127.0.0.1:%d' % self.daemon.port('echo')]).rc, 0)
        p = subprocess.run(['promtool', 'check', 'metrics'], input=self.scrape(mport), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout.strip(), p.stderr.strip()), (0, '', ''))

    def test_errors_and_head(self):
        mport = self.start()
        got = http(mport, b'GET /other HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertTrue(got.startswith(b'HTTP/1.1 404 '), got[:100])
        got = http(mport, b'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
        self.assertTrue(got.startswith(b'HTTP/1.1 405 '), got[:100])
        self.assertIn(b'\r\nAllow: GET, HEAD\r\n', got)
        got = http(mport, b'GET /metrics SPDY/3\r\n\r\n')
        self.assertTrue(got.startswith(b'HTTP/1.1 400 '), got[:100])
        got = http(mport, b'HEAD /metrics HTTP/1.0\r\n\r\n')
        self.assertTrue(got.startswith(b'HTTP/1.1 200 '), got[:100])
        self.assertTrue(got.endswith(b'\r\n\r\n'), 'HEAD has no body')
        got = http(mport, b'GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertIn(b'tcpechod_workers 2', got)


class BoundsTests(MetricsTestCase):
    def test_long_request_line_gets_414_and_close(self):
        mport = self.start()
        got = http(mport, b'GET /' + b'a' * 65536 + b' HTTP/1.1\r\n\r\n')
        self.assertTrue(got.startswith(b'HTTP/1.1 414 '), got[:100])
        long_header = b'GET /metrics HTTP/1.1\r\nX: ' + b'b' * 20000 + b'\r\n\r\n'
        got = http(mport, long_header)
        self.assertTrue(got.startswith(b'HTTP/1.1 431 '), got[:100])
        self.assertEqual(run_probe(['-n', '20', '127.0.0.1:%d' % self.daemon.port('echo')]).rc, 0)

    def test_silent_client_is_closed_after_the_request_timeout(self):
        mport = self.start()
        with socket.create_connection(('127.0.0.1', mport), timeout=15) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(1), b'')  # closed by the daemon
            waited = time.monotonic() - t0
        # kRequestTimeoutMs = 5 s, checked by a 1 s tick.
        self.assertGreaterEqual(waited, 4.0)
        self.assertLess(waited, 12.0)

    def test_scrapers_beyond_the_cap_are_refused_and_echo_goes_on(self):
        mport = self.start()
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        for _ in range(24):
            idle.append(socket.create_connection(('127.0.0.1', mport), timeout=5))
        # Refused ones are closed at once; the others wait for a request (5 s from their
        # accept): count closes until 8 are seen or 3.5 s have passed, then none may follow.
        connected = time.monotonic()
        closed = set()
        while len(closed) < 24 - 16 and time.monotonic() < connected + 3.5:
            readable, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.1)
            closed.update(s for s in readable if s.recv(1) == b'')
        readable, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.3)
        self.assertEqual(len(closed), 24 - 16)
        self.assertEqual(readable, [], 'a session was closed before its request timeout')
        self.assertEqual(run_probe(['-c', '4', '-n', '50', '127.0.0.1:%d' % self.daemon.port('echo')]).rc, 0)
        for s in idle:
            s.close()
        idle.clear()
        # Once the daemon has seen them go a scrape works again and shows the refusals (a
        # scrape that comes before it has is itself refused, and counted: retried).
        samples, retries = self.scrape_when_served(mport, 10)
        refused_total = total(samples, 'tcpechod_metrics_refused_total')
        self.assertGreaterEqual(refused_total, 24 - 16)
        self.assertLessEqual(refused_total, 24 - 16 + retries)


class ReloadTests(MetricsTestCase):
    def test_reload_gauges(self):
        mport = self.start()
        before, _ = parse(self.scrape(mport))
        self.daemon.write_config('not = [valid')
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log('reload failed')
        after, _ = parse(self.scrape(mport))
        self.assertEqual(after[('tcpechod_config_last_reload_success', '')], 0)
        self.assertGreaterEqual(after[('tcpechod_config_last_reload_timestamp_seconds', '')],
                                before[('tcpechod_config_last_reload_timestamp_seconds', '')])
        # A good reload that moves [metrics] is applied, but not to [metrics].
        self.daemon.write_config(self.config(metrics='[metrics]\nport = %d\n' % free_port()))
        self.daemon.signal(signal.SIGHUP)
        self.daemon.wait_log('changes to [metrics] take effect at the next restart')
        end = time.monotonic() + 10
        while True:
            after, _ = parse(self.scrape(mport))
            if after[('tcpechod_config_last_reload_success', '')] == 1 or time.monotonic() > end:
                break
            time.sleep(0.1)
        self.assertEqual(after[('tcpechod_config_last_reload_success', '')], 1)
        self.assertEqual(self.daemon.stop(), 0)


@unittest.skipUnless(shutil.which('systemd-socket-activate'), 'systemd-socket-activate not installed')
class ActivationTests(MetricsTestCase):
    def test_served_from_the_passed_socket(self):
        echo, mport = free_port(), free_port()
        argv = ['systemd-socket-activate', '-l', '127.0.0.1:%d' % echo, '-l', '127.0.0.1:%d' % mport,
                '--fdname=echo:metrics']
        self.daemon.start(self.config(metrics='[metrics]\nport = 1\n'), argv_prefix=argv, wait_ready=False)
        samples, _ = self.scrape_when_served(mport, 15, pause=0.1)  # the first connection starts it
        self.assertEqual(samples[('tcpechod_workers', '')], self.WORKERS)
        self.assertIn('metrics listening name=metrics address=127.0.0.1:%d path=/metrics from=systemd' % mport,
                      self.daemon.log())
        self.assertEqual(self.daemon.stop(), 0)


@unittest.skipUnless(shutil.which('prometheus'), 'prometheus (Debian package) not installed')
class PrometheusTests(MetricsTestCase):
    def query(self, web, expr):
        url = 'http://127.0.0.1:%d/api/v1/query?query=%s' % (web, urllib.request.quote(expr))
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
        result = doc['data']['result']
        return float(result[0]['value'][1]) if result else None

    def wait_query(self, web, expr, ok, timeout=60.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = self.query(web, expr)
                if last is not None and ok(last):
                    return last
            except (urllib.error.URLError, ConnectionError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        self.fail('%s never satisfied the check within %.0f s (last: %r)' % (expr, timeout, last))

    def test_real_prometheus_scrapes_it(self):
        mport = self.start()
        echo = self.daemon.port('echo')
        tmp = tempfile.mkdtemp(prefix='tcpecho-prometheus-')
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, 'prometheus.yml'), 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n  - job_name: tcpechod\n    static_configs:\n'
                    '      - targets: ["127.0.0.1:%d"]\n' % mport)
        web = free_port()
        log = open(os.path.join(tmp, 'prometheus.log'), 'w')
        self.addCleanup(log.close)
        proc = subprocess.Popen(['prometheus', '--config.file=' + os.path.join(tmp, 'prometheus.yml'),
                                 '--storage.tsdb.path=' + os.path.join(tmp, 'data'),
                                 '--web.listen-address=127.0.0.1:%d' % web],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(kill_process, proc)
        self.wait_query(web, 'up{job="tcpechod"}', lambda v: v == 1)
        before = self.wait_query(web, 'sum(tcpechod_bytes_received_total)', lambda v: v >= 0)
        run = run_probe(['-c', '2', '-n', '100', '-s', '10000', '127.0.0.1:%d' % echo])
        self.assertEqual(run.rc, 0, run)
        self.wait_query(web, 'sum(tcpechod_bytes_received_total)', lambda v: v >= before + 2 * 100 * 10000)


if __name__ == '__main__':
    unittest.main(verbosity=2)
