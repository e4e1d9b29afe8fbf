#!/usr/bin/env python3
"""Connection storm client (run by test_storm.py inside a fresh network namespace).

Opens --count connections to tcpechod's listeners, at most --inflight at a time, non-blocking,
and drops each one. Connection i:
  close:   i even -> RST (SO_LINGER {1, 0}, then close), i odd -> FIN (plain close)
  payload: i % 3 == 0 -> mid-frame: part of a frame (length/fixed/line listener), then close
           i % 3 == 1 -> one whole frame (any listener), its echo read back and compared
           i % 3 == 2 -> nothing: connect, then close
Prints one JSON object: counts, elapsed seconds, failures (the first few, with reasons).
Bounded: every connection has a deadline, the whole run has one.
"""

import argparse
import errno
import json
import random
import selectors
import socket
import struct
import sys
import time

LINGER_RST = struct.pack('ii', 1, 0)


def parse_targets(text):
    out = {}
    for item in text.split(','):
        name, addr = item.split('=', 1)
        host, port = addr.rsplit(':', 1)
        out[name] = (host, int(port))
    return out


class Plan:
    """What connection i sends, expects back, and how it ends."""

    def __init__(self, i, targets, fixed_size, rng):
        self.i = i
        self.rst = i % 2 == 0
        self.kind = ('mid', 'whole', 'bare')[i % 3]
        framed = [n for n in ('length', 'fixed', 'line') if n in targets]
        everyone = sorted(targets)
        self.listener = framed[(i // 3) % len(framed)] if self.kind == 'mid' else everyone[(i // 3) % len(everyone)]
        self.addr = targets[self.listener]
        frame = self.frame(rng, fixed_size) if self.kind != 'bare' else b''
        if self.kind == 'mid':
            cut = rng.randint(1, len(frame) - 1)  # strictly inside: never a whole frame
            self.send, self.expect = frame[:cut], b''
        else:
            self.send = self.expect = frame

    def frame(self, rng, fixed_size):
        n = rng.randint(1, 2000)
        body = bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
        body = body[:n]
        if self.listener == 'length':
            return struct.pack('>I', len(body)) + body
        if self.listener == 'fixed':
            return (body * (fixed_size // len(body) + 1))[:fixed_size]
        if self.listener == 'line':
            return body.replace(b'\n', b'.') + b'\n'
        return body  # raw


class Conn:
    def __init__(self, plan, deadline):
        self.plan = plan
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.got = bytearray()
        self.connected = False


def run(args):
    targets = parse_targets(args.targets)
    rng = random.Random(args.seed)
    sel = selectors.DefaultSelector()
    stats = {'total': args.count, 'done': 0, 'rst': 0, 'fin': 0, 'mid': 0, 'whole': 0, 'bare': 0,
             'failures': 0, 'failure_samples': [], 'max_inflight': 0,
             'per_listener': {n: 0 for n in targets}}
    start = time.monotonic()
    hard_deadline = start + args.deadline
    next_i = 0
    live = {}

    def fail(c, why):
        stats['failures'] += 1
        if len(stats['failure_samples']) < 10:
            stats['failure_samples'].append('conn %d (%s %s %s): %s' % (
                c.plan.i, c.plan.listener, c.plan.kind, 'rst' if c.plan.rst else 'fin', why))
        finish(c, counted=False)

    def finish(c, counted=True):
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        live.pop(c.sock.fileno(), None)
        try:
            if c.plan.rst:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        except OSError:
            pass
        c.sock.close()
        if counted:
            stats['done'] += 1
            stats['rst' if c.plan.rst else 'fin'] += 1
            stats[c.plan.kind] += 1
            stats['per_listener'][c.plan.listener] += 1

    def after_send(c):
        if c.plan.expect:
            sel.modify(c.sock, selectors.EVENT_READ, c)
        else:
            finish(c)

    def on_writable(c):
        if not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(c, 'connect: %s' % errno.errorcode.get(err, err))
                return
            c.connected = True
        while c.sent < len(c.plan.send):
            try:
                c.sent += c.sock.send(c.plan.send[c.sent:])
            except BlockingIOError:
                return
            except OSError as e:
                fail(c, 'send: %s' % e)
                return
        after_send(c)

    def on_readable(c):
        while True:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                fail(c, 'recv: %s' % e)
                return
            if not data:
                fail(c, 'EOF after %d of %d echoed bytes' % (len(c.got), len(c.plan.expect)))
                return
            c.got += data
            if len(c.got) >= len(c.plan.expect):
                if bytes(c.got) != c.plan.expect:
                    fail(c, 'echo differs')
                else:
                    finish(c)
                return

    while (next_i < args.count or live) and time.monotonic() < hard_deadline:
        while next_i < args.count and len(live) < args.inflight:
            c = Conn(Plan(next_i, targets, args.fixed_size, rng), time.monotonic() + args.conn_timeout)
            next_i += 1
            rc = c.sock.connect_ex(c.plan.addr)
            if rc not in (0, errno.EINPROGRESS):
                live[c.sock.fileno()] = c
                fail(c, 'connect: %s' % errno.errorcode.get(rc, rc))
                continue
            live[c.sock.fileno()] = c
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        stats['max_inflight'] = max(stats['max_inflight'], len(live))
        for key, events in sel.select(timeout=0.1):
            c = key.data
            if c.sock.fileno() < 0:
                continue
            if events & selectors.EVENT_WRITE:
                on_writable(c)
            elif events & selectors.EVENT_READ:
                on_readable(c)
        now = time.monotonic()
        for c in [c for c in live.values() if c.deadline < now]:
            fail(c, 'no progress within %.0f s' % args.conn_timeout)
    for c in list(live.values()):
        fail(c, 'run deadline (%.0f s) reached' % args.deadline)
    stats['not_started'] = args.count - next_i
    stats['elapsed_s'] = round(time.monotonic() - start, 3)
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--targets', required=True, help='name=host:port,... (raw, fixed, length, line)')
    ap.add_argument('--count', type=int, default=10000)
    ap.add_argument('--inflight', type=int, default=256)
    ap.add_argument('--fixed-size', type=int, required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--conn-timeout', type=float, default=10.0)
    ap.add_argument('--deadline', type=float, default=60.0)
    args = ap.parse_args()
    stats = run(args)
    json.dump(stats, sys.stdout)
    sys.stdout.write('\n')
    return 0 if stats['failures'] == 0 and stats['done'] == args.count else 1


if __name__ == '__main__':
    sys.exit(main())
