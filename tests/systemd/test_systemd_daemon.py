"""tcpechod as a systemd service, with the real tools short of a booted systemd (that is
tests/system/): the sd_notify protocol read from a NOTIFY_SOCKET the test binds, socket
activation through systemd-socket-activate, SIGHUP reload (also under continuous probe
traffic), and the watchdog withheld while one worker thread is wedged (ptrace).
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
import unittest

from systemd_common import (ConfigDaemon, NotifyListener, WedgedThread, free_port,
                            kill_process, ptrace_permitted, run_probe, thread_ids, PROBE)

LOCATION_RE = re.compile(r'tcpechod\.toml:\d+:\d+: ')


def echo_once(port, payload, timeout=5.0):
    """One TCP connection: send `payload`, read the same number of bytes back."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(payload)
        got = b''
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


class DaemonTestCase(unittest.TestCase):
    def setUp(self):
        self.daemon = ConfigDaemon()
        self.addCleanup(self.daemon.cleanup)

    def notify(self):
        n = NotifyListener(self.daemon.tmp.name)
        self.addCleanup(n.close)
        return n

    def assertProbeOk(self, args):
        run = run_probe(args)
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(run.doc['errors'], [], run)
        return run


class NotifyTests(DaemonTestCase):
    LISTENERS = [{'name': 'echo'}, {'name': 'echo', 'proto': 'udp'}]

    def test_ready_status_reload_watchdog_stopping(self):
        n = self.notify()
        d = self.daemon
        text = d.config_text(self.LISTENERS)
        d.start(text, env={'NOTIFY_SOCKET': n.path, 'WATCHDOG_USEC': '1000000'}, wait_ready=False)
        ready = n.wait_for('READY', '1')
        log = d.log()
        self.assertIn('listening name=echo proto=tcp', log)   # READY only once listeners are live
        self.assertIn('listening name=echo proto=udp', log)
        self.assertIn('2 listeners', ready['STATUS'])
        self.assertIn('configuration loaded', ready['STATUS'])

        # STATUS= carries live figures, refreshed every few seconds.
        self.assertProbeOk(['-n', '100', '-s', '1K', '127.0.0.1:%d' % d.port('echo')])
        end = time.monotonic() + 8
        status = ''
        while '1 accepted' not in status and time.monotonic() < end:
            status = n.wait_for('STATUS', timeout=8)['STATUS']
        self.assertIn('(1 accepted), 102400 bytes echoed', status)

        # Keep-alives every WATCHDOG_USEC/2 = 500 ms, none missed (a gap of a whole period
        # would have made systemd kill the service).
        stamps = [t for t, f in n.messages if f.get('WATCHDOG') == '1']
        self.assertGreaterEqual(len(stamps), 5, n.messages)
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        self.assertTrue(0.4 <= statistics.median(gaps) <= 0.6, gaps)
        self.assertLess(max(gaps), 0.95, gaps)

        # A good reload: RELOADING=1 with MONOTONIC_USEC= (now), then READY=1.
        d.write_config(d.config_text([{'name': 'echo', 'mode': 'line'}, self.LISTENERS[1]]))
        before = time.monotonic()
        d.signal(signal.SIGHUP)
        reloading = n.wait_for('RELOADING', '1')
        usec = int(reloading['MONOTONIC_USEC'])
        self.assertTrue(before * 1e6 - 1e5 <= usec <= time.monotonic() * 1e6, (before, usec))
        ready = n.wait_for('READY', '1')
        self.assertIn('configuration reloaded (1x)', ready['STATUS'])

        # A broken one: reported with file:line:column in STATUS= and the log; still READY.
        d.write_config(text.replace('proto = "udp"', 'proto = "sctp"'))
        d.signal(signal.SIGHUP)
        n.wait_for('RELOADING', '1')
        ready = n.wait_for('READY', '1')
        self.assertIn('reload failed, serving the previous configuration: ', ready['STATUS'])
        self.assertRegex(ready['STATUS'], LOCATION_RE)
        self.assertIn('proto', ready['STATUS'])
        self.assertRegex(d.log(), r'err: reload failed: .*tcpechod\.toml:\d+:\d+: .*proto')

        d.signal(signal.SIGTERM)
        stopping = n.wait_for('STOPPING', '1')
        self.assertIn('draining', stopping['STATUS'])
        self.assertEqual(d.proc.wait(15), 0)

    def test_no_watchdog_unless_asked(self):
        n = self.notify()
        self.daemon.start(self.daemon.config_text(self.LISTENERS), env={'NOTIFY_SOCKET': n.path},
                          wait_ready=False)
        n.wait_for('READY', '1')
        n.poll(1.2)
        self.assertFalse([f for _, f in n.messages if 'WATCHDOG' in f], n.messages)

    def test_watchdog_for_another_pid_is_not_ours(self):
        n = self.notify()
        self.daemon.start(self.daemon.config_text(self.LISTENERS),
                          env={'NOTIFY_SOCKET': n.path, 'WATCHDOG_USEC': '200000',
                               'WATCHDOG_PID': str(os.getpid())}, wait_ready=False)
        n.wait_for('READY', '1')
        n.poll(1.0)
        self.assertFalse([f for _, f in n.messages if 'WATCHDOG' in f], n.messages)

    def test_watchdog_withheld_while_a_worker_is_wedged(self):
        if not ptrace_permitted():
            self.skipTest('ptrace is not permitted here (needed to stop one worker thread)')
        n = self.notify()
        d = self.daemon
        d.start(d.config_text(self.LISTENERS), env={'NOTIFY_SOCKET': n.path, 'WATCHDOG_USEC': '1000000'})
        n.wait_for('WATCHDOG', '1')
        tids = thread_ids(d.proc.pid, 'tcpechod-w1')
        self.assertEqual(len(tids), 1, 'worker thread tcpechod-w1 not found')
        with WedgedThread(tids[0]):
            wedged_at = time.monotonic()
            n.poll(3.0)
            # A keep-alive may still go out while the last stamp is younger than half the
            # period (500 ms) and the next check comes (500 ms later at most): none after 1.1 s.
            late = [round(t - wedged_at, 3) for t, f in n.messages
                    if f.get('WATCHDOG') == '1' and t - wedged_at > 1.1]
            self.assertEqual(late, [], 'WATCHDOG=1 sent while worker 1 was stopped')
            self.assertIn('watchdog: worker 1 has not run its loop', d.log())
            n.cursor = len(n.messages)  # only keep-alives sent after the thread runs again count
        n.wait_for('WATCHDOG', '1', timeout=2)
        self.assertProbeOk(['-n', '50', '-c', '4', '127.0.0.1:%d' % d.port('echo')])
        self.assertEqual(d.stop(), 0)


@unittest.skipUnless(shutil.which('systemd-socket-activate'), 'systemd-socket-activate not installed')
class SocketActivationTests(DaemonTestCase):
    CONFIG = ConfigDaemon.config_text([
        {'name': 'echo'},
        {'name': 'echo', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']},
        {'name': 'echo-length', 'mode': 'length'},
    ])

    def activate(self, port, fdname='echo', udp=False, config=None):
        n = self.notify()
        argv = ['systemd-socket-activate', '-l', '127.0.0.1:%d' % port, '--fdname=' + fdname,
                '-E', 'NOTIFY_SOCKET']
        if udp:
            argv.insert(1, '-d')
        # systemd-socket-activate execs tcpechod in its own process: the PID is the daemon's.
        self.daemon.start(config or self.CONFIG, env={'NOTIFY_SOCKET': n.path},
                          argv_prefix=argv, wait_ready=False)
        return n

    def wait_listening_socket(self, port, kind):
        """Until systemd-socket-activate holds the port (bind fails with EADDRINUSE)."""
        end = time.monotonic() + 10
        while time.monotonic() < end:
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                return
            finally:
                s.close()
            time.sleep(0.02)
        self.fail('systemd-socket-activate did not bind 127.0.0.1:%d' % port)

    def test_tcp_activated_on_first_connection_and_verified(self):
        port = free_port()
        n = self.activate(port)
        self.wait_listening_socket(port, socket.SOCK_STREAM)
        n.poll(0.3)
        self.assertNotIn('ready:', self.daemon.log(), 'started before the first connection')
        self.assertFalse(n.messages)
        self.assertProbeOk(['-n', '200', '-s', '1K', '-c', '4', '127.0.0.1:%d' % port])
        n.wait_for('READY', '1')
        log = self.daemon.log()
        self.assertIn('listening name=echo proto=tcp mode=raw address=127.0.0.1:%d from=systemd' % port, log)
        # With sockets from systemd the daemon binds nothing itself, and says what it skips.
        self.assertIn('not serving name=echo-length proto=tcp', log)
        self.assertIn('not serving name=echo proto=udp', log)
        self.assertEqual(self.daemon.stop(), 0)

    def test_udp_activated_and_verified(self):
        port = free_port(socket.SOCK_DGRAM)
        n = self.activate(port, udp=True)
        self.wait_listening_socket(port, socket.SOCK_DGRAM)
        self.assertProbeOk(['--udp', '-n', '300', '-s', '512', '-c', '3', '127.0.0.1:%d' % port])
        n.wait_for('READY', '1')
        self.assertIn('listening name=echo proto=udp address=127.0.0.1:%d sockets=1 from=systemd' % port,
                      self.daemon.log())
        self.assertEqual(self.daemon.stop(), 0)

    def test_socket_matching_no_listener_is_a_config_error(self):
        port = free_port()
        self.activate(port, fdname='echo-fixed')
        self.wait_listening_socket(port, socket.SOCK_STREAM)
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
                s.recv(1)
        except OSError:
            pass
        self.assertEqual(self.daemon.proc.wait(15), 78)
        self.assertIn('systemd passed a tcp socket named "echo-fixed" (127.0.0.1:%d) but ' % port,
                      self.daemon.log())
        self.assertIn('has no [[listen]] table with name = "echo-fixed" and proto = "tcp"', self.daemon.log())

    def test_reload_keeps_the_passed_socket(self):
        port = free_port()
        n = self.activate(port)
        self.wait_listening_socket(port, socket.SOCK_STREAM)
        self.assertProbeOk(['-n', '20', '127.0.0.1:%d' % port])
        n.wait_for('READY', '1')
        self.daemon.write_config(self.CONFIG.replace('name = "echo"\naddress = "127.0.0.1"\nport = 0\n'
                                                     'proto = "tcp"',
                                                     'name = "echo"\naddress = "127.0.0.1"\nport = 0\n'
                                                     'proto = "tcp"\nmode = "line"', 1))
        self.daemon.signal(signal.SIGHUP)
        n.wait_for('RELOADING', '1')
        n.wait_for('READY', '1')
        self.assertIn('reload: serving name=echo proto=tcp mode=line address=127.0.0.1:%d from=systemd' % port,
                      self.daemon.log())
        self.assertProbeOk(['-n', '20', '--mode', 'line', '127.0.0.1:%d' % port])
        # A reload that drops the passed socket's listener is refused like a bad file.
        self.daemon.write_config(ConfigDaemon.config_text([{'name': 'other'}]))
        self.daemon.signal(signal.SIGHUP)
        ready = n.wait_for('READY', '1')
        self.assertIn('reload failed', ready['STATUS'])
        self.assertIn('no [[listen]] table with name = "echo" and proto = "tcp"', ready['STATUS'])
        self.assertProbeOk(['-n', '20', '--mode', 'line', '127.0.0.1:%d' % port])
        self.assertEqual(self.daemon.stop(), 0)


class ReloadTests(DaemonTestCase):
    def test_new_mode_for_new_connections_existing_ones_keep_theirs(self):
        d = self.daemon
        d.start(d.config_text([{'name': 'a'}]))
        port = d.port('a')
        old = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.addCleanup(old.close)
        old.sendall(b'raw')
        self.assertEqual(old.recv(100), b'raw')
        d.write_config(d.config_text([{'name': 'a', 'mode': 'line'}]))
        d.signal(signal.SIGHUP)
        d.wait_log('reload complete')
        self.assertEqual(d.port('a'), port, 'the socket must be kept across a reload')
        # The connection from before: still raw (echoed without a newline).
        old.sendall(b'still raw')
        self.assertEqual(old.recv(100), b'still raw')
        # A new one: line mode (nothing until the newline, then the whole line).
        with socket.create_connection(('127.0.0.1', port), timeout=5) as new:
            new.sendall(b'half')
            new.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                new.recv(100)
            new.settimeout(5)
            new.sendall(b' line\n')
            self.assertEqual(new.recv(100), b'half line\n')
        self.assertEqual(d.stop(), 0)

    def test_added_listeners_open_removed_ones_close_open_connections_stay(self):
        d = self.daemon
        d.start(d.config_text([{'name': 'a'}, {'name': 'gone'},
                               {'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}]))
        gone_port, udp_port = d.port('gone'), d.port('u', 'udp')
        kept = socket.create_connection(('127.0.0.1', gone_port), timeout=5)
        self.addCleanup(kept.close)
        kept.sendall(b'x')
        self.assertEqual(kept.recv(10), b'x')
        d.write_config(d.config_text([{'name': 'a'}, {'name': 'new', 'mode': 'length'}]))
        d.signal(signal.SIGHUP)
        d.wait_log('reload complete')
        # Added: served at once.
        self.assertProbeOk(['-n', '50', '--mode', 'length', '127.0.0.1:%d' % d.port('new')])
        # Removed TCP listener: closed; its open connection still echoes.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', gone_port), timeout=5).close()
        kept.sendall(b'still here')
        self.assertEqual(kept.recv(100), b'still here')
        # Removed UDP listener: its sockets are closed (the kernel answers port unreachable).
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(u.close)
        u.connect(('127.0.0.1', udp_port))
        u.settimeout(2)
        u.send(b'anyone?')
        with self.assertRaises(ConnectionRefusedError):
            u.recv(100)
        kept.close()
        self.assertEqual(d.stop(), 0)

    def test_sighup_during_a_reload_is_queued_not_overlapped(self):
        """Remove a listener, then add it back while a worker has not applied the removal yet
        (its thread is stopped): the second SIGHUP waits until every worker dropped the
        socket, so it binds the port again, and each RELOADING=1 gets its own READY=1."""
        if not ptrace_permitted():
            self.skipTest('ptrace is not permitted here (needed to stop one worker thread)')
        n = self.notify()
        d = self.daemon
        b_port = free_port()
        with_b = d.config_text([{'name': 'a'}, {'name': 'b', 'port': b_port}])
        d.start(with_b, env={'NOTIFY_SOCKET': n.path})
        tids = thread_ids(d.proc.pid, 'tcpechod-w1')
        self.assertEqual(len(tids), 1, 'worker thread tcpechod-w1 not found')
        with WedgedThread(tids[0]):
            d.write_config(d.config_text([{'name': 'a'}]))
            d.signal(signal.SIGHUP)
            d.wait_log('SIGHUP: reloading')
            d.write_config(with_b)
            d.signal(signal.SIGHUP)
            d.wait_log('reloading again when they are done')
            time.sleep(0.2)
            self.assertNotIn('reload complete', d.log())  # worker 1 has not applied it
        d.wait_log('reload complete', count=2)
        self.assertNotIn('reload failed', d.log())
        self.assertEqual(echo_once(b_port, b'back'), b'back')
        n.poll(0.3)
        kinds = [k for _, f in n.messages for k in ('RELOADING', 'READY') if k in f]
        self.assertEqual(kinds, ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY'], kinds)
        self.assertEqual(d.stop(), 0)

    def test_failed_reload_changes_nothing(self):
        d = self.daemon
        good = d.config_text([{'name': 'a'}])
        d.start(good)
        port = d.port('a')
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(('127.0.0.1', 0))
        blocker.listen(1)
        busy = blocker.getsockname()[1]
        broken = [
            ('syntax', good + '[[listen]\n'),
            ('value', good.replace('workers = 2', 'workers = -3')),
            # Valid file, but a port is taken: the mode change in it must not apply either.
            ('port in use', d.config_text([{'name': 'a', 'mode': 'line'}, {'name': 'b', 'port': busy}])),
        ]
        for i, (what, text) in enumerate(broken, 1):
            d.write_config(text)
            d.signal(signal.SIGHUP)
            log = d.wait_log('reload failed', count=i)
            line = [ln for ln in log.splitlines() if 'reload failed' in ln][-1]
            if what == 'port in use':
                self.assertIn('127.0.0.1:%d: bind: Address already in use' % busy, line)
            else:
                self.assertRegex(line, LOCATION_RE, what)
            self.assertIn('still serving the previous configuration', line)
            self.assertEqual(echo_once(port, b'no newline needed'), b'no newline needed', what)
        self.assertNotIn('reload complete', d.log())
        self.assertEqual(d.stop(), 0)

    def test_twenty_reloads_under_traffic_half_broken(self):
        d = self.daemon
        listeners = [{'name': 'raw'}, {'name': 'len', 'mode': 'length'},
                     {'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}]
        good = [d.config_text(listeners, extra='[limits]\nmax_frame = "%dMiB"' % (i + 1)) for i in range(2)]
        broken = [good[0].replace('mode = "length"', 'mode = "lenght"'),
                  good[0] + 'unknown_key = 1\n']
        d.start(good[0])
        raw, length, udp = d.port('raw'), d.port('len'), d.port('u', 'udp')
        probes = [
            ['-t', '7', '-c', '4', '-s', '1-64K', '127.0.0.1:%d' % raw],
            ['-t', '7', '-c', '4', '--mode', 'length', '-s', '1-8K', '127.0.0.1:%d' % length],
            ['-t', '7', '-c', '2', '--udp', '--rate', '2000', '-s', '1-1400', '127.0.0.1:%d' % udp],
        ]
        procs = [subprocess.Popen([PROBE, '-J', '-q'] + p, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for p in probes]
        for p in procs:
            self.addCleanup(kill_process, p)
        time.sleep(0.5)
        for i in range(20):
            d.write_config(broken[(i // 2) % 2] if i % 2 else good[(i // 2) % 2])
            d.signal(signal.SIGHUP)
            # The next SIGHUP only once this one is done (either way).
            end = time.monotonic() + 5
            while d.log().count('reload complete') + d.log().count('reload failed') < i + 1:
                self.assertLess(time.monotonic(), end, 'reload %d did not finish:\n%s' % (i + 1, d.log()))
                time.sleep(0.02)
            # Fresh connections see each new configuration, not only the long-lived ones.
            self.assertEqual(echo_once(raw, b'after reload %d' % i), b'after reload %d' % i)
            time.sleep(0.15)
        for p, args in zip(procs, probes):
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, '%s: %s\n%s' % (args, err, out[-2000:]))
            self.assertEqual(json.loads(out)['errors'], [], args)
        log = d.log()
        self.assertEqual(log.count('reload complete'), 10, log)
        failed = [ln for ln in log.splitlines() if 'reload failed' in ln]
        self.assertEqual(len(failed), 10, log)
        for ln in failed:
            self.assertRegex(ln, LOCATION_RE)
        # The last reload (broken) left the one before it in force: still served.
        self.assertProbeOk(['-n', '50', '--mode', 'length', '127.0.0.1:%d' % length])
        self.assertEqual(d.stop(), 0)


if __name__ == '__main__':
    unittest.main(verbosity=2)
