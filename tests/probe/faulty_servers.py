"""Echo servers for the probe tests: a correct one and deliberately faulty ones.

Each server listens on 127.0.0.1 (port 0), serves every connection in its own thread with
blocking sockets polled by select(), and records per connection what it received (`rx`) and
what it sent (`tx`). Because a correct echo sends back exactly what it received, the first
stream offset where `tx` differs from `rx` is where a verifying client must report a
mismatch; `Record.first_difference()` computes it from the real bytes (random payloads may
make e.g. a duplicated chunk start with the expected byte), so tests do not have to guess.

A fault is a pure function of everything received so far -> everything that may be sent so
far (`output(rx, rec)`); it must only ever grow (each result a prefix of the next), which lets the
server send just the new tail after every recv(). Stream offsets count from 0 and include any
framing, because the server does not know the framing: it works on the byte stream.
"""

import select
import socket
import struct
import threading
import time

# Every wait in here is bounded: a test that goes wrong fails, it never hangs.
POLL_S = 0.05
SEND_TIMEOUT_S = 10.0
RECV_CHUNK = 256 * 1024


class Record:
    """What one connection did; filled in by its thread."""

    def __init__(self, index):
        self.index = index        # order of accept() on this server
        self.rx = bytearray()
        self.tx = bytearray()
        self.eof = False          # the client half-closed (or closed)
        self.error = None         # an OSError seen by the server (e.g. the client went away)
        self.fault_at = None      # where the fault took effect (stall/close/reset offset)
        self.done = threading.Event()

    def first_difference(self):
        """First offset i < min(len(rx), len(tx)) with tx[i] != rx[i], else None."""
        n = min(len(self.rx), len(self.tx))
        step = 4096
        for start in range(0, n, step):
            end = min(n, start + step)
            if self.tx[start:end] != self.rx[start:end]:
                for i in range(start, end):
                    if self.tx[i] != self.rx[i]:
                        return i
        return None


class EchoServer:
    """A correct raw echo server; subclasses override output() and the hooks.

    on_eof(): what to do after the client's half-close (default: close, i.e. send our FIN).
    """

    def __init__(self, host='127.0.0.1', family=socket.AF_INET):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.records = []
        self._threads = []
        self._conns = []
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    # ---- the fault: override these -------------------------------------------------------
    def output(self, rx, rec):
        """Everything that may have been sent after receiving rx (a correct echo: rx)."""
        return rx

    def after_send(self, conn, rec):
        """Called after each send; return 'continue', 'discard' (keep reading, send
        nothing more) or 'stop' (the connection is finished, already closed)."""
        return 'continue'

    def on_eof(self, conn, rec):
        """The client half-closed; default: close the connection (clean FIN)."""

    # ---- plumbing ------------------------------------------------------------------------
    @property
    def target(self):
        if ':' in self.host:
            return '[%s]:%d' % (self.host, self.port)
        return '%s:%d' % (self.host, self.port)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], POLL_S)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                rec = Record(len(self.records))
                self.records.append(rec)
                self._conns.append(conn)
                t = threading.Thread(target=self._serve, args=(conn, rec), daemon=True)
                self._threads.append(t)
            t.start()

    def _send(self, conn, data):
        conn.settimeout(SEND_TIMEOUT_S)
        try:
            conn.sendall(data)
        finally:
            conn.settimeout(0.0)

    def _serve(self, conn, rec):
        conn.setblocking(False)
        mode = 'continue'
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn], [], [], POLL_S)
                if not ready:
                    continue
                try:
                    data = conn.recv(RECV_CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    rec.eof = True
                    self.on_eof(conn, rec)
                    return
                rec.rx += data
                if mode == 'discard':
                    continue
                out = self.output(rec.rx, rec)
                if len(out) > len(rec.tx):
                    new = bytes(out[len(rec.tx):])
                    self._send(conn, new)
                    rec.tx += new
                mode = self.after_send(conn, rec)
                if mode == 'stop':
                    return
        except OSError as e:
            rec.error = e
        finally:
            try:
                conn.close()
            except OSError:
                pass
            rec.done.set()

    def wait_done(self, count=1, timeout=10.0, accept_timeout=2.0):
        """Wait until `count` connections have finished; returns their records. Called
        after the client exited, so its connections are already queued to be accepted."""
        start = time.monotonic()
        while time.monotonic() < start + timeout:
            with self._lock:
                recs = list(self.records)
            if len(recs) >= count and all(r.done.is_set() for r in recs[:count]):
                return recs[:count]
            if len(recs) < count and time.monotonic() > start + accept_timeout:
                break
            time.sleep(0.01)
        raise AssertionError('the server saw %d connections, %d finished, expected %d within '
                             '%.0f s' % (len(recs), sum(r.done.is_set() for r in recs), count,
                                         timeout))

    def close(self):
        self._stop.set()
        self._acceptor.join(5)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)
        try:
            self._listener.close()
        except OSError:
            pass


# ---- faults that corrupt data: a verifying client reports "mismatch" at first_difference ---

class FlipServer(EchoServer):
    """Echoes, but XORs the byte at stream offset `at` with `mask`."""

    def __init__(self, at, mask=0x5A, **kw):
        self.at, self.mask = at, mask
        super().__init__(**kw)

    def output(self, rx, rec):
        if len(rx) <= self.at:
            return rx
        out = bytearray(rx)
        out[self.at] ^= self.mask
        return out


class DropServer(EchoServer):
    """Echoes, but leaves out `length` bytes starting at offset `at`."""

    def __init__(self, at, length, **kw):
        self.at, self.length = at, length
        super().__init__(**kw)

    def output(self, rx, rec):
        if len(rx) <= self.at:
            return rx
        if len(rx) < self.at + self.length:
            return rx[:self.at]
        return rx[:self.at] + rx[self.at + self.length:]


class DupServer(EchoServer):
    """Echoes, but sends the chunk [at, at+length) twice."""

    def __init__(self, at, length, **kw):
        self.at, self.length = at, length
        super().__init__(**kw)

    def output(self, rx, rec):
        end = self.at + self.length
        if len(rx) < end:
            return rx
        return rx[:end] + rx[self.at:end] + rx[end:]


class SwapServer(EchoServer):
    """Echoes, but swaps the chunks [at, at+length) and [at+length, at+2*length)."""

    def __init__(self, at, length, **kw):
        self.at, self.length = at, length
        super().__init__(**kw)

    def output(self, rx, rec):
        a, b, c = self.at, self.at + self.length, self.at + 2 * self.length
        if len(rx) < c:
            return rx[:a] if len(rx) > a else rx
        return rx[:a] + rx[b:c] + rx[a:b] + rx[c:]


class ExtraServer(EchoServer):
    """Echoes correctly, then sends `extra` more bytes: after the client's half-close
    (appended_after=None), or as soon as `appended_after` bytes have been received."""

    def __init__(self, extra=b'\x00XYZ', appended_after=None, **kw):
        self.extra, self.appended_after = extra, appended_after
        super().__init__(**kw)

    def output(self, rx, rec):
        if self.appended_after is not None and len(rx) >= self.appended_after:
            return rx[:self.appended_after] + self.extra + rx[self.appended_after:]
        return rx

    def on_eof(self, conn, rec):
        if self.appended_after is None:
            self._send(conn, self.extra)
            rec.tx += self.extra
            rec.fault_at = len(rec.rx)


class FragmentingServer(EchoServer):
    """A correct echo that sends in `piece`-byte send() calls `delay_s` apart (TCP_NODELAY),
    so the client sees the echo in many small pieces."""

    def __init__(self, piece=7, delay_s=0.0005, **kw):
        self.piece, self.delay_s = piece, delay_s
        super().__init__(**kw)

    def _send(self, conn, data):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), self.piece):
            super()._send(conn, data[i:i + self.piece])
            time.sleep(self.delay_s)


# ---- faults that stop the stream -----------------------------------------------------------

class StopAtServer(EchoServer):
    """Echoes the first `at` bytes only; subclasses say what happens then (after_send)."""

    def __init__(self, at, **kw):
        self.at = at
        super().__init__(**kw)

    def output(self, rx, rec):
        return rx[:self.at]


class StallServer(StopAtServer):
    """Echoes `at` bytes, then echoes nothing more; keeps reading and keeps the connection
    open (until the client closes it)."""

    def after_send(self, conn, rec):
        if len(rec.tx) >= self.at:
            rec.fault_at = self.at
        return 'continue'


class CloseEarlyServer(StopAtServer):
    """Echoes `at` bytes, then shutdown(SHUT_WR) (a clean FIN) and reads and discards
    everything else until the client closes."""

    def after_send(self, conn, rec):
        if len(rec.tx) >= self.at:
            conn.shutdown(socket.SHUT_WR)
            rec.fault_at = self.at
            return 'discard'
        return 'continue'


class ResetServer(StopAtServer):
    """Echoes `at` bytes, then closes with SO_LINGER {1, 0}: the kernel sends RST."""

    def after_send(self, conn, rec):
        if len(rec.tx) >= self.at:
            rec.fault_at = self.at
            # Give loopback a moment to deliver what was sent before the RST overtakes it.
            time.sleep(0.05)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            conn.close()
            return 'stop'
        return 'continue'


class NeverCloseServer(EchoServer):
    """Echoes correctly but never closes after the client's half-close (until stopped)."""

    def on_eof(self, conn, rec):
        self._stop.wait(30)
