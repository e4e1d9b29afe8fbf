"""The real tcpechod's UDP echo, driven with plain sockets: sizes, IPv6, truncation, the
reflection guard, the per-source rate limit, receive-queue drops, many flows over workers.

Tests that must forge a source (port 0, privileged ports, the daemon's own address) need
root; they skip with a message otherwise (CI runs as root). Traffic stays on loopback.
"""

import os
import signal
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'probe'))
from probe_common import Daemon, ipv6_loopback_works  # noqa: E402

IS_ROOT = os.geteuid() == 0
REPLY_WAIT_S = 0.3   # loopback echoes arrive in microseconds; silence this long means none


def pattern(size, salt=0):
    return bytes((i * 7 + salt) & 0xff for i in range(size))


def udp_client(family=socket.AF_INET, bind=None):
    s = socket.socket(family, socket.SOCK_DGRAM)
    if bind is not None:
        s.bind(bind)
    s.settimeout(REPLY_WAIT_S)
    return s


def receive_all(sock, limit=100000):
    """Every datagram that arrives until REPLY_WAIT_S of silence (bounded by `limit`)."""
    got = []
    for _ in range(limit):
        try:
            got.append(sock.recvfrom(70000))
        except socket.timeout:
            break
    return got


class UdpDaemonTest(unittest.TestCase):
    maxDiff = None

    def start(self, listeners, workers=2, extra_config=''):
        d = Daemon(listeners, workers=workers, extra_config=extra_config)
        self.addCleanup(d.kill)
        return d.start()

    def counters(self, daemon):
        """SIGUSR1 and parse the daemon's next 'counters' line."""
        return daemon.counters(timeout=5)

    def settled_counters(self, daemon, ready):
        """Counters once ready(counters) holds: a worker counts an echo just after sending it,
        so a client that already has the echo may ask a moment too early."""
        deadline = time.monotonic() + 5
        c = self.counters(daemon)
        while not ready(c) and time.monotonic() < deadline:
            time.sleep(0.02)
            c = self.counters(daemon)
        return c

    def assert_echo(self, sock, target, payload):
        sock.sendto(payload, target)
        data, source = sock.recvfrom(70000)
        self.assertEqual(len(data), len(payload))
        self.assertEqual(data, payload)
        return source

    def assert_no_reply(self, sock):
        with self.assertRaises(socket.timeout):
            sock.recvfrom(70000)

    # --- echo ------------------------------------------------------------------------------

    def test_sizes_ipv4(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        target = ('127.0.0.1', d.ports['u'])
        s = udp_client()
        self.addCleanup(s.close)
        for size in (0, 1, 1472, 65507):
            with self.subTest(size=size):
                self.assert_echo(s, target, pattern(size, size))
        # The largest IPv4 UDP payload is 65507 bytes: the kernel refuses one more.
        with self.assertRaises(OSError) as cm:
            s.sendto(pattern(65508), target)
        self.assertEqual(cm.exception.errno, 90)  # EMSGSIZE
        c = self.settled_counters(d, lambda c: c['udp_datagrams_echoed'] >= 4)
        self.assertEqual(c['udp_datagrams_received'], 4)
        self.assertEqual(c['udp_datagrams_echoed'], 4)
        self.assertEqual(c['udp_bytes_echoed'], 0 + 1 + 1472 + 65507)

    @unittest.skipUnless(ipv6_loopback_works(), 'no IPv6 loopback (::1) on this machine')
    def test_sizes_ipv6(self):
        d = self.start([{'name': 'u6', 'proto': 'udp', 'address': '::1', 'extra': ['udp_rate_limit = 0']}])
        target = ('::1', d.ports['u6'])
        s = udp_client(socket.AF_INET6)
        self.addCleanup(s.close)
        for size in (0, 1, 1452, 65507, 65527):
            with self.subTest(size=size):
                self.assert_echo(s, target, pattern(size, size))
        with self.assertRaises(OSError) as cm:
            s.sendto(pattern(65528), target)
        self.assertEqual(cm.exception.errno, 90)  # EMSGSIZE

    @unittest.skipUnless(ipv6_loopback_works(), 'no IPv6 loopback (::1) on this machine')
    def test_wildcard_replies_from_the_address_the_client_used(self):
        # A "::" socket serves IPv4 and IPv6; each reply must come from the address the
        # request went to (IP_PKTINFO), or a client on a multi-homed host would drop it.
        d = self.start([{'name': 'w', 'proto': 'udp', 'address': '::', 'extra': ['udp_rate_limit = 0']}])
        port = d.ports['w']
        s4 = udp_client()
        self.addCleanup(s4.close)
        for addr in ('127.0.0.1', '127.0.0.2', '127.1.2.3'):
            with self.subTest(addr=addr):
                source = self.assert_echo(s4, (addr, port), pattern(100))
                self.assertEqual(source, (addr, port))
        s6 = udp_client(socket.AF_INET6)
        self.addCleanup(s6.close)
        source = self.assert_echo(s6, ('::1', port), pattern(100))
        self.assertEqual(source[:2], ('::1', port))

    def test_many_flows_across_workers(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}], workers=2)
        target = ('127.0.0.1', d.ports['u'])
        workers = worker_threads(d.proc.pid)
        self.assertEqual(len(workers), 2, workers)
        before = {tid: wakeups(d.proc.pid, tid) for tid in workers}
        flows = [udp_client() for _ in range(200)]
        for s in flows:
            self.addCleanup(s.close)
        for round_ in range(5):
            for i, s in enumerate(flows):
                s.sendto(struct.pack('!II', i, round_) + pattern(56, i), target)
            for i, s in enumerate(flows):
                data, _ = s.recvfrom(100)
                self.assertEqual(data, struct.pack('!II', i, round_) + pattern(56, i))
        # SO_REUSEPORT spreads 200 flows over both workers' sockets: each woke up for some.
        for tid in workers:
            self.assertGreater(wakeups(d.proc.pid, tid) - before[tid], 5, 'worker %d never served' % tid)
        c = self.settled_counters(d, lambda c: c['udp_datagrams_echoed'] >= 1000)
        self.assertEqual(c['udp_datagrams_echoed'], 1000)

    # --- drops, each with its counter -------------------------------------------------------

    def test_truncated_datagrams_are_dropped_not_echoed(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0', 'udp_max_datagram = 1000']}])
        target = ('127.0.0.1', d.ports['u'])
        s = udp_client()
        self.addCleanup(s.close)
        self.assert_echo(s, target, pattern(1000))
        s.sendto(pattern(1001), target)
        self.assert_no_reply(s)
        s.sendto(pattern(65507), target)
        self.assert_no_reply(s)
        self.assert_echo(s, target, pattern(999))
        c = self.settled_counters(d, lambda c: c['udp_datagrams_echoed'] >= 2)
        self.assertEqual(c['udp_dropped_truncated'], 2)
        self.assertEqual(c['udp_datagrams_echoed'], 2)
        self.assertIn('larger than udp_max_datagram', d.log())

    def test_rate_limit_per_source_address(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 10', 'udp_burst = 5']}])
        target = ('127.0.0.1', d.ports['u'])
        a = udp_client()
        self.addCleanup(a.close)
        t0 = time.monotonic()
        for i in range(50):
            a.sendto(pattern(64, i), target)
        elapsed = time.monotonic() - t0
        got_a = receive_all(a)
        # The burst, plus at most one token per 100 ms that passed while sending.
        self.assertGreaterEqual(len(got_a), 5)
        self.assertLessEqual(len(got_a), 5 + int(elapsed * 10) + 1)
        # Another source address has its own budget; another port of the same address does not.
        b = udp_client(bind=('127.0.0.2', 0))
        self.addCleanup(b.close)
        for i in range(20):
            b.sendto(pattern(64, i), target)
        self.assertGreaterEqual(len(receive_all(b)), 5)
        a2 = udp_client()
        self.addCleanup(a2.close)
        a2.sendto(pattern(64), target)
        # (a's bucket may have refilled by a token or two while we waited for b's replies.)
        time.sleep(0.6)  # 6 tokens at 10/s: the bucket (5) is full again
        for i in range(5):
            self.assert_echo(a, target, pattern(64, 100 + i))
        c = self.settled_counters(d, lambda c: c['udp_datagrams_received'] ==
                                  c['udp_datagrams_echoed'] + c['udp_dropped_rate_limit'])
        self.assertGreater(c['udp_dropped_rate_limit'], 50 - 5 - 10)
        self.assertEqual(c['udp_datagrams_received'],
                         c['udp_datagrams_echoed'] + c['udp_dropped_rate_limit'])
        self.assertIn('over udp_rate_limit', d.log())

    def test_rate_limit_is_on_without_the_key(self):
        """A hand-written config without [limits] or udp_rate_limit: the built-in default is
        the shipped one (1000/s per source address, bursts of 1000), not an open reflector."""
        d = self.start([{'name': 'u', 'proto': 'udp'}], workers=1)
        self.assertNotIn('udp_rate_limit', d.config_text())
        self.assertNotIn('[limits]', d.config_text())
        target = ('127.0.0.1', d.ports['u'])
        a = udp_client()
        self.addCleanup(a.close)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        # 3000 datagrams in bursts of 100, 5 ms apart: well over 1000/s, and gently enough
        # that the daemon's receive queue (~300 small datagrams) does not overflow.
        t0 = time.monotonic()
        for burst in range(30):
            for i in range(100):
                a.sendto(pattern(16, burst * 100 + i), target)
            time.sleep(0.005)
        c = self.settled_counters(d, lambda c: c['udp_datagrams_received'] + c['udp_dropped_receive_queue'] == 3000
                                  and c['udp_datagrams_received'] == c['udp_datagrams_echoed'] +
                                  c['udp_dropped_rate_limit'])
        # The bucket's tokens accrue in the daemon's time, at most until the counters settled.
        elapsed = time.monotonic() - t0
        # (A starved worker may still see its queue overflow: those never reached the limiter.)
        self.assertGreaterEqual(c['udp_datagrams_echoed'], min(1000, c['udp_datagrams_received']), c)
        self.assertLessEqual(c['udp_datagrams_echoed'], 1000 + int(elapsed * 1000) + 1, (elapsed, c))
        self.assertGreater(c['udp_dropped_rate_limit'],
                           c['udp_datagrams_received'] - 1000 - int(elapsed * 1000) - 1, (elapsed, c))

    @unittest.skipUnless(IS_ROOT, 'needs root to send from ports 7, 13, 19 and 37')
    def test_echo_and_chargen_source_ports_get_no_answer(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        target = ('127.0.0.1', d.ports['u'])
        for port in (7, 13, 19, 37):
            with self.subTest(port=port):
                try:
                    s = udp_client(bind=('127.0.0.1', port))
                except OSError as e:
                    self.skipTest('cannot bind 127.0.0.1:%d here: %s' % (port, e))
                self.addCleanup(s.close)
                s.sendto(b'chargen says hello', target)
                self.assert_no_reply(s)
        # An ordinary port on the same address is answered.
        s = udp_client(bind=('127.0.0.1', 0))
        self.addCleanup(s.close)
        self.assert_echo(s, target, b'hello')
        c = self.settled_counters(d, lambda c: c['udp_datagrams_echoed'] >= 1)
        self.assertEqual(c['udp_dropped_reflection'], 4)
        self.assertEqual(c['udp_datagrams_echoed'], 1)
        self.assertIn('reflection guard', d.log())

    @unittest.skipUnless(IS_ROOT, 'needs root for a raw socket (forged source port 0 / own address)')
    def test_source_port_zero_and_own_address_get_no_answer(self):
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        port = d.ports['u']
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        self.addCleanup(raw.close)
        # Source port 0.
        raw.sendto(udp_packet(0, port, b'from port zero'), ('127.0.0.1', 0))
        # The daemon's own address and port: answering would echo to itself forever.
        raw.sendto(udp_packet(port, port, b'from myself'), ('127.0.0.1', 0))
        # A forged ordinary source is answered (the packet is well formed): sent to a port we
        # listen on, so the reply is seen.
        listener = udp_client(bind=('127.0.0.1', 0))
        self.addCleanup(listener.close)
        raw.sendto(udp_packet(listener.getsockname()[1], port, b'forged but fine'), ('127.0.0.1', 0))
        self.assertEqual(listener.recvfrom(100)[0], b'forged but fine')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c = self.counters(d)
            if c['udp_datagrams_received'] >= 3:
                break
            time.sleep(0.05)
        time.sleep(REPLY_WAIT_S)
        c = self.counters(d)
        self.assertEqual(c['udp_dropped_reflection'], 1)
        self.assertEqual(c['udp_dropped_own_port'], 1)
        # Exactly three received: no loop started.
        self.assertEqual(c['udp_datagrams_received'], 3)
        self.assertEqual(c['udp_datagrams_echoed'], 1)
        self.assertIn('echo loop guard', d.log())

    @unittest.skipUnless(IS_ROOT, 'needs root for a raw socket (forged sources)')
    def test_no_echo_loop_through_another_local_address_or_listener(self):
        # On a wildcard listener every local address is the daemon's: a forged
        # 127.0.0.2:P -> 127.0.0.1:P would bounce between the two forever. Two listeners of
        # one daemon likewise.
        d = self.start([{'name': 'w', 'proto': 'udp', 'address': '0.0.0.0', 'extra': ['udp_rate_limit = 0']},
                        {'name': 'o', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}])
        pw, po = d.ports['w'], d.ports['o']
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.addCleanup(raw.close)
        raw.sendto(ip_udp_packet('127.0.0.2', pw, '127.0.0.1', pw, b'bounce'), ('127.0.0.1', 0))
        raw.sendto(ip_udp_packet('127.0.0.1', po, '127.0.0.1', pw, b'ping'), ('127.0.0.1', 0))
        raw.sendto(ip_udp_packet('127.0.0.1', pw, '127.0.0.1', po, b'pong'), ('127.0.0.1', 0))
        c = self.settled_counters(d, lambda c: c['udp_datagrams_received'] >= 3)
        time.sleep(REPLY_WAIT_S)
        c = self.counters(d)
        self.assertEqual(c['udp_datagrams_received'], 3)  # a loop would make this grow
        self.assertEqual(c['udp_dropped_own_port'], 3)
        self.assertEqual(c['udp_datagrams_echoed'], 0)

    def test_broadcast_to_a_wildcard_listener_gets_no_answer(self):
        d = self.start([{'name': 'w', 'proto': 'udp', 'address': '0.0.0.0', 'extra': ['udp_rate_limit = 0']}])
        s = udp_client()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.sendto(b'anyone?', ('127.255.255.255', d.ports['w']))
        self.assert_no_reply(s)
        c = self.settled_counters(d, lambda c: c['udp_dropped_not_unicast'] >= 1)
        self.assertGreaterEqual(c['udp_dropped_not_unicast'], 1)  # one copy per worker socket
        self.assertEqual(c['udp_datagrams_echoed'], 0)
        self.assertEqual(c['udp_send_errors'], 0)
        self.assert_echo(s, ('127.0.0.1', d.ports['w']), b'unicast is fine')

    def test_drain_stops_udp_at_once(self):
        # A TCP connection that holds data keeps the daemon draining (up to drain_timeout);
        # UDP has nothing to finish, so it is refused from the start of the drain.
        d = self.start([{'name': 't', 'mode': 'raw'},
                        {'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}],
                       extra_config='drain_timeout = 5')
        u = udp_client()
        self.addCleanup(u.close)
        u.connect(('127.0.0.1', d.ports['u']))
        u.send(b'before')
        self.assertEqual(u.recv(100), b'before')
        t = socket.create_connection(('127.0.0.1', d.ports['t']), timeout=5)
        self.addCleanup(t.close)
        t.setblocking(False)
        chunk = b'x' * 65536
        # We never read: the daemon's output fills and it pauses reading (it then holds data,
        # so the drain waits for it). Wait until it says so; a slow (sanitizer) build may not
        # even have accepted yet when our first sends fill the kernel's buffers.
        deadline = time.monotonic() + 10
        while self.counters(d)['read_pauses'] < 1 and time.monotonic() < deadline:
            for _ in range(16):
                try:
                    t.send(chunk)
                except BlockingIOError:
                    break
            time.sleep(0.05)
        self.assertGreaterEqual(self.counters(d)['read_pauses'], 1, d.log())
        d.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while 'SIGTERM: draining 1 connection ' not in d.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn('SIGTERM: draining 1 connection ', d.log())
        time.sleep(0.2)
        self.assertIsNone(d.proc.poll(), 'the daemon should still be draining the TCP connection')
        u.send(b'during the drain')
        # Every worker closed its socket: the kernel answers "port unreachable".
        with self.assertRaises(ConnectionRefusedError):
            u.recv(100)

    def test_receive_queue_overflow_is_counted(self):
        # A stopped daemon cannot read: its socket's queue overflows, and each datagram read
        # afterwards carries the kernel's drop count (SO_RXQ_OVFL).
        d = self.start([{'name': 'u', 'proto': 'udp', 'extra': ['udp_rate_limit = 0']}], workers=1)
        target = ('127.0.0.1', d.ports['u'])
        s = udp_client()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        d.proc.send_signal(signal.SIGSTOP)
        try:
            sent = 0
            for i in range(20000):
                s.sendto(pattern(1000, i), target)
                sent += 1
        finally:
            d.proc.send_signal(signal.SIGCONT)
        replies = receive_all(s, limit=sent)
        # The kernel stamps its running drop count on datagrams queued after the drops: the
        # ones queued before the overflow carry none, so the count shows with the next one.
        self.assert_echo(s, target, b'after the overflow')
        sent += 1
        c = self.settled_counters(d, lambda c: c['udp_datagrams_echoed'] >= len(replies) + 1)
        self.assertGreater(c['udp_dropped_receive_queue'], 0)
        self.assertEqual(c['udp_datagrams_received'] + c['udp_dropped_receive_queue'], sent)
        self.assertEqual(len(replies) + 1, c['udp_datagrams_echoed'])

    # --- lifecycle ----------------------------------------------------------------------

    def test_a_second_daemon_on_the_same_port_fails_clearly(self):
        d = self.start([{'name': 'u', 'proto': 'udp'}])
        # SO_REUSEPORT would let a second tcpechod join the group and take half the traffic.
        other = Daemon([{'name': 'u', 'proto': 'udp'}])
        self.addCleanup(other.kill)
        other.config_text = lambda: ('[[listen]]\nname = "u"\nport = %d\nproto = "udp"\n' % d.ports['u'])
        with self.assertRaises(AssertionError) as cm:
            other.start(timeout=10)
        self.assertIn('exited with 1', str(cm.exception))
        self.assertIn('Address already in use', other.log())
        s = udp_client()
        self.addCleanup(s.close)
        self.assert_echo(s, ('127.0.0.1', d.ports['u']), b'still mine')

    def test_tcp_and_udp_share_a_name_and_port(self):
        d = Daemon([])
        self.addCleanup(d.kill)
        port = free_port_for_both()
        d.config_text = lambda: ('workers = 2\n'
                                 '[[listen]]\nname = "echo"\nport = %d\n'
                                 '[[listen]]\nname = "echo"\nport = %d\nproto = "udp"\n' % (port, port))
        d.start()
        self.assertIn('listening name=echo proto=tcp', d.log())
        self.assertIn('listening name=echo proto=udp', d.log())
        s = udp_client()
        self.addCleanup(s.close)
        self.assert_echo(s, ('127.0.0.1', port), b'udp')
        t = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.addCleanup(t.close)
        t.sendall(b'tcp')
        self.assertEqual(t.recv(10), b'tcp')
        self.assertEqual(d.stop(), 0)


def udp_packet(sport, dport, payload):
    # IPv4 UDP checksum 0 means "none", so a raw socket need not compute it.
    return struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload


def ip_udp_packet(src, sport, dst, dport, payload):
    """A whole IPv4 packet for an IPPROTO_RAW socket (any source address, checksum-less UDP)."""
    total = 20 + 8 + len(payload)
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, total, 0, 0, 64, socket.IPPROTO_UDP, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + udp_packet(sport, dport, payload)


def worker_threads(pid):
    tids = []
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
            if f.read().startswith('tcpechod-w'):
                tids.append(int(tid))
    return tids


def wakeups(pid, tid):
    with open('/proc/%d/task/%d/status' % (pid, tid)) as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches:'):
                return int(line.split()[1])
    return 0


def free_port_for_both():
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(('127.0.0.1', 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise AssertionError('no port free for both TCP and UDP')


if __name__ == '__main__':
    unittest.main(verbosity=2)
