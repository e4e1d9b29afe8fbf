#!/usr/bin/env python3
"""Minimal python3 asyncio echo peer for the tcpechod benchmarks.

    asyncio_echo.py [PORT]    listens on 127.0.0.1:PORT (0 or absent: a free port) and prints
                              "port=N" on stdout once listening. Ends on SIGTERM/SIGINT.

Protocol-based (the fastest pure-asyncio API): every chunk is written back as it arrives.
Flow control: when the transport's write buffer passes its high-water mark asyncio calls
pause_writing(); we stop reading until resume_writing(), so memory stays bounded when the
client reads slower than it writes. asyncio sets TCP_NODELAY on TCP transports itself.
"""
import asyncio
import signal
import sys


class Echo(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close once the pending echo is written

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"port={server.sockets[0].getsockname()[1]}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
