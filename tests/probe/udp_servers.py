"""UDP echo servers for the probe tests: a correct one and deliberately faulty ones.

Each server binds 127.0.0.1 (or ::1) port 0 and serves from one thread, polling with select()
so every wait is bounded. It numbers the datagrams of each client address (= each probe flow:
every flow is its own socket) from 0 and records what it received (`rx[addr]`) and sent
(`tx[addr]`). A fault is `respond(data, index, addr) -> [datagram, ...]`: what to send back for
the datagram with that index (a correct echo: [data]). Faults keyed on the index are exact,
so the tests can check exact counts.

The probe's datagram header (tools/udp_datagram.hpp), for tests that forge datagrams:
magic b'TCUD', flow id (4 bytes), sequence number (8), send time (8), big-endian.
"""

import select
import socket
import struct
import threading
import time

POLL_S = 0.05
HEADER = struct.Struct('!4sIQQ')   # magic, flow, seq, send_ns
MAGIC = b'TCUD'
HEADER_SIZE = HEADER.size          # 24


def header_of(datagram):
    """(magic, flow, seq, send_ns) of a probe datagram of at least 24 bytes."""
    return HEADER.unpack_from(datagram)


def with_header(datagram, **fields):
    """A copy of a probe datagram with header fields replaced (magic, flow, seq, send_ns)."""
    magic, flow, seq, send_ns = header_of(datagram)
    values = dict(magic=magic, flow=flow, seq=seq, send_ns=send_ns)
    values.update(fields)
    return HEADER.pack(values['magic'], values['flow'], values['seq'], values['send_ns']) \
        + bytes(datagram[HEADER_SIZE:])


class UdpEchoServer:
    """A correct UDP echo server; subclasses override respond()."""

    def __init__(self, host='127.0.0.1'):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        # Room for a window of datagrams: the probe must not see drops the fault did not make.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.rx = {}          # client address -> [datagram, ...] in arrival order
        self.tx = {}          # client address -> [datagram, ...] in sending order
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def target(self):
        if ':' in self.host:
            return '[%s]:%d' % (self.host, self.port)
        return '%s:%d' % (self.host, self.port)

    # ---- the fault: override ----------------------------------------------------------
    def respond(self, data, index, addr):
        return [data]

    # ---- plumbing ----------------------------------------------------------------------
    def send(self, data, addr):
        self.sock.sendto(data, addr)
        with self.lock:
            self.tx.setdefault(addr, []).append(bytes(data))

    def _serve(self):
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], POLL_S)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                data, addr = self.sock.recvfrom(70000)
            except OSError:
                continue   # e.g. ECONNREFUSED from an earlier reply to a probe that is gone
            with self.lock:
                got = self.rx.setdefault(addr, [])
                got.append(data)
                index = len(got) - 1
            for out in self.respond(data, index, addr):
                try:
                    self.send(out, addr)
                except OSError:
                    pass

    def burst(self, addr, count, data):
        """Sends `count` copies of `data` to `addr` at once (from the test's thread)."""
        for _ in range(count):
            self.send(data, addr)

    def received(self):
        """All datagrams received, per client address (a copy)."""
        with self.lock:
            return {a: list(d) for a, d in self.rx.items()}

    def only_client(self):
        """The datagrams of the one client address (asserts there was exactly one)."""
        got = self.received()
        assert len(got) == 1, 'expected one client address, got %d' % len(got)
        return next(iter(got.values()))

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class DropEveryServer(UdpEchoServer):
    """Echoes, but drops every nth datagram of each flow (indexes n-1, 2n-1, ...)."""

    def __init__(self, n, **kw):
        self.n = n
        super().__init__(**kw)

    def respond(self, data, index, addr):
        return [] if index % self.n == self.n - 1 else [data]


class DupEveryServer(UdpEchoServer):
    """Echoes, and sends datagrams with index % n == k twice."""

    def __init__(self, n, k=0, **kw):
        self.n, self.k = n, k
        super().__init__(**kw)

    def respond(self, data, index, addr):
        return [data, data] if index % self.n == self.k else [data]


class SwapPairsServer(UdpEchoServer):
    """Echoes datagrams in swapped pairs: holds index 2k, then sends 2k+1 and 2k."""

    def __init__(self, **kw):
        self.held = {}
        super().__init__(**kw)

    def respond(self, data, index, addr):
        if index % 2 == 0:
            self.held[addr] = data
            return []
        return [data, self.held.pop(addr)]


class FlipServer(UdpEchoServer):
    """Echoes, but XORs byte `offset` of datagram `index` (an int, or several) with `mask`."""

    def __init__(self, index, offset, mask=0x5A, **kw):
        self.indexes = {index} if isinstance(index, int) else set(index)
        self.offset, self.mask = offset, mask
        super().__init__(**kw)

    def respond(self, data, index, addr):
        if index not in self.indexes:
            return [data]
        out = bytearray(data)
        out[self.offset] ^= self.mask
        return [bytes(out)]


class TruncateServer(UdpEchoServer):
    """Echoes datagram `index` as its first `keep` bytes."""

    def __init__(self, index, keep, **kw):
        self.index, self.keep = index, keep
        super().__init__(**kw)

    def respond(self, data, index, addr):
        return [data[:self.keep]] if index == self.index else [data]


class ExtendServer(UdpEchoServer):
    """Echoes datagram `index` with `extra` bytes appended (a different size)."""

    def __init__(self, index, extra=b'\x00XYZ', **kw):
        self.index, self.extra = index, extra
        super().__init__(**kw)

    def respond(self, data, index, addr):
        return [data + self.extra] if index == self.index else [data]


class UnsolicitedServer(UdpEchoServer):
    """Echoes correctly; after the echo of datagram `index` also sends `make(data)`, a
    datagram nobody sent (built from the echoed one, e.g. with another flow id)."""

    def __init__(self, index, make, **kw):
        self.index, self.make = index, make
        super().__init__(**kw)

    def respond(self, data, index, addr):
        return [data, self.make(data)] if index == self.index else [data]


class ForeignSourceServer(UdpEchoServer):
    """Echoes correctly; after datagram `index` a second socket (another source port) sends
    the probe a copy of it: a connected UDP socket must never see it."""

    def __init__(self, index, **kw):
        self.index = index
        super().__init__(**kw)
        self.other = socket.socket(self.sock.family, socket.SOCK_DGRAM)
        self.other.bind((self.host, 0))
        self.foreign_sent = 0

    def respond(self, data, index, addr):
        if index == self.index:
            self.other.sendto(data, addr)
            self.foreign_sent += 1
            time.sleep(0.01)   # let it arrive first, if it could
        return [data]

    def close(self):
        super().close()
        self.other.close()


class DelayServer(UdpEchoServer):
    """Echoes, but sends the echo of datagram `index` only `delay_s` later (from a timer
    thread), so a probe with a shorter --timeout counts it lost, then late."""

    def __init__(self, index, delay_s, **kw):
        self.index, self.delay_s = index, delay_s
        self.timers = []
        super().__init__(**kw)

    def respond(self, data, index, addr):
        if index != self.index:
            return [data]
        t = threading.Timer(self.delay_s, self.send, args=(data, addr))
        t.daemon = True
        self.timers.append(t)
        t.start()
        return []

    def close(self):
        for t in self.timers:
            t.cancel()
        super().close()


class HoldServer(UdpEchoServer):
    """Echoes, but holds back the echo of the first datagram of each flow for which
    `hold(data, index)` is true and sends it just before the echo of datagram `release` of
    that flow: with a --timeout in between, a late echo that arrives while a later datagram
    is in flight."""

    def __init__(self, hold, release, **kw):
        self.hold, self.release = hold, release
        self.held = {}
        self.held_index = {}
        super().__init__(**kw)

    def respond(self, data, index, addr):
        if addr not in self.held_index and self.hold(data, index):
            self.held[addr] = data
            self.held_index[addr] = index
            return []
        if index == self.release and addr in self.held:
            return [self.held.pop(addr), data]
        return [data]


class CrossFlowServer(UdpEchoServer):
    """Echoes correctly, but leaks: a copy of datagram `index` of the first client address is
    sent to the second one, just before the echo of that one's next datagram (so it arrives
    while one of that flow's own datagrams is in flight)."""

    def __init__(self, index, **kw):
        self.index = index
        self.order = []
        self.copy = None
        self.leaked = 0
        super().__init__(**kw)

    def respond(self, data, index, addr):
        if addr not in self.order:
            self.order.append(addr)
        if index == self.index and addr == self.order[0]:
            self.copy = data
        elif self.copy is not None and len(self.order) >= 2 and addr == self.order[1]:
            self.send(self.copy, addr)
            self.copy = None
            self.leaked += 1
        return [data]


class SilentServer(UdpEchoServer):
    """Receives and answers nothing."""

    def respond(self, data, index, addr):
        return []


def free_udp_port(host='127.0.0.1'):
    """A port nothing listens on (bound, then released): datagrams to it are refused."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port
