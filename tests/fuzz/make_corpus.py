#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Hand-made seeds: each covers one case of a target's input format (framer_harness.hpp,
fuzz_config.cpp, fuzz_loop.cpp). The files are committed; rerun this after changing a format:
    tests/fuzz/make_corpus.py
Reproducers of bugs found by fuzzing are added to the corpus directories by hand (named
crash-*, leak-*, timeout-* ...) and are not touched here.
"""
import os
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
ROOT = HERE.parent.parent


def header(param, chunk_shape, seed_hi=0, partial=False):
    """The 4-byte framer header: parameter (LE 16 bit), chunk shape 0-7 (+ seed), flags."""
    b2 = (chunk_shape & 7) | ((seed_hi & 0x1F) << 3)
    b3 = (0x80 if partial else 0) | ((seed_hi >> 5) & 0x7F)
    return struct.pack("<HBB", param, b2, b3)


def length_frame(payload):
    return struct.pack(">I", len(payload)) + payload


def write(target, files):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for name, data in files.items():
        if isinstance(data, str):
            data = data.encode()
        (d / f"seed-{name}").write_bytes(data)


def fixed():
    f = {}
    f["empty"] = b""
    f["header-only"] = header(3, 0)
    f["size1-bytes"] = header(0, 0) + b"abcdef"
    f["size4-exact"] = header(3, 3) + b"0123" * 8
    f["size4-tail"] = header(3, 1, partial=True) + b"0123" * 5 + b"xy"
    f["size16-chunks7"] = header(15, 3, seed_hi=9) + bytes(range(100))
    f["size100-chunk64"] = header(99, 5, partial=True) + bytes(i % 251 for i in range(450))
    f["size1024-chunk512"] = header(1023, 6) + bytes(2100)
    f["size7-chunk4096"] = header(6, 7, seed_hi=77) + b"\n" * 50
    return f


def length():
    f = {}
    f["empty"] = b""
    f["max0-empty-frames"] = header(0, 0) + length_frame(b"") * 4
    f["max16-frames"] = header(16, 2) + length_frame(b"hello") + length_frame(b"") + length_frame(b"x" * 16)
    f["max16-too-large"] = header(16, 1) + length_frame(b"ok") + struct.pack(">I", 17) + b"y" * 17
    f["max-huge-header"] = header(100, 3, partial=True) + length_frame(b"abc") + b"\xff\xff\xff\xff" + b"z" * 8
    f["max-u32-ff-header"] = header(0xFFFF, 4) + b"\xff\xff\xff\xff" + b"z" * 20
    f["partial-header"] = header(64, 0) + length_frame(b"12345") + b"\x00\x00"
    f["partial-payload"] = header(64, 5, seed_hi=3) + length_frame(b"q" * 40) + struct.pack(">I", 50) + b"r" * 10
    f["chunk512-many"] = header(300, 6, partial=True) + b"".join(length_frame(bytes([i]) * i) for i in range(60))
    f["big-frame"] = header(4000, 7) + length_frame(bytes(range(256)) * 15)
    return f


def line():
    f = {}
    f["empty"] = b""
    f["max0-empty-lines"] = header(0, 0) + b"\n\n\n"
    f["max0-too-large"] = header(0, 1) + b"\na\n"
    f["lines"] = header(64, 2) + b"hello\nworld\n\nlast"
    f["crlf"] = header(64, 3, partial=True) + b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
    f["exact-max"] = header(5, 1) + b"12345\n" + b"123456\n"
    f["long-no-newline"] = header(10, 0, seed_hi=5) + b"x" * 40
    f["long-chunks"] = header(200, 5, partial=True) + b"".join(b"y" * (i * 7 % 190) + b"\n" for i in range(30))
    f["binary"] = header(100, 4) + bytes(range(256)) * 2
    f["max-u32"] = header(0xFFFF, 7) + b"a\n" * 100 + b"tail"
    return f


def config():
    f = {}
    f["shipped"] = (ROOT / "etc" / "tcpechod.toml").read_bytes()
    f["empty"] = ""
    f["minimal"] = '[[listen]]\nport = 0\n'
    f["every-mode"] = (
        'workers = 2\nlog_level = "debug"\ndrain_timeout = "250ms"\n\n'
        '[limits]\nmax_connections = 10\nidle_timeout = "5m"\nmax_frame = "64KiB"\n'
        'output_high_watermark = "16MiB"\noutput_low_watermark = "1MiB"\n'
        'udp_rate_limit = 100\nudp_burst = 0\nudp_max_datagram = 1472\n\n'
        '[[listen]]\nname = "raw"\naddress = "127.0.0.1"\nport = 0\nproto = "tcp"\nmode = "raw"\n\n'
        '[[listen]]\nname = "fixed"\nport = 0\nmode = "fixed"\nframe_size = "1KiB"\n\n'
        '[[listen]]\nname = "length"\naddress = "::"\nport = 0\nmode = "length"\nmax_frame = 4096\n\n'
        '[[listen]]\nname = "line"\naddress = "::1"\nport = 0\nmode = "line"\nidle_timeout = 0\n\n'
        '[[listen]]\nname = "raw"\nport = 0\nproto = "udp"\nudp_rate_limit = 5\n'
    )
    f["same-port-two-protos"] = '[[listen]]\nname="a"\nport=7\n[[listen]]\nname="a"\nport=7\nproto="udp"\n'
    # Broken ones: every error path should be reachable from a seed.
    f["err-syntax"] = 'workers = \n[[listen]]\nport = 0\n'
    f["err-syntax-string"] = '[[listen]]\nname = "unterminated\nport = 0\n'
    f["err-unknown-key"] = 'wrokers = 1\n[[listen]]\nport = 0\n'
    f["err-unknown-listen-key"] = '[[listen]]\nport = 0\nfoo = 1\n'
    f["err-no-listen"] = 'workers = 1\n'
    f["err-listen-not-array"] = 'listen = 5\n'
    f["err-listen-empty"] = 'listen = []\n'
    f["err-listen-item"] = 'listen = [1]\n'
    f["err-missing-port"] = '[[listen]]\nname = "x"\n'
    f["err-port-range"] = '[[listen]]\nport = 65536\n'
    f["err-negative"] = 'workers = -1\n[[listen]]\nport = 0\n'
    f["err-bad-mode"] = '[[listen]]\nport = 0\nmode = "frames"\n'
    f["err-bad-proto"] = '[[listen]]\nport = 0\nproto = "sctp"\n'
    for mode in ("fixed", "length", "line"):
        f[f"err-udp-mode-{mode}"] = f'[[listen]]\nport = 0\nproto = "udp"\nmode = "{mode}"\n'
    f["err-udp-tcp-limit"] = '[[listen]]\nport = 0\nproto = "udp"\nmax_frame = 10\n'
    f["err-tcp-udp-limit"] = '[[listen]]\nport = 0\nudp_burst = 10\n'
    f["err-frame-size-mode"] = '[[listen]]\nport = 0\nmode = "line"\nframe_size = 10\n'
    f["err-frame-size-range"] = '[[listen]]\nport = 0\nmode = "fixed"\nframe_size = "1GiB"\n'
    f["err-watermarks"] = '[limits]\noutput_low_watermark = "2MiB"\n[[listen]]\nport = 0\n'
    f["err-watermark-listen"] = '[[listen]]\nport = 0\noutput_high_watermark = 1024\n'
    f["err-bad-size"] = '[limits]\nmax_frame = "12 parsecs"\n[[listen]]\nport = 0\n'
    f["err-bad-duration"] = 'drain_timeout = "1.0005s"\n[[listen]]\nport = 0\n'
    f["err-duration-range"] = 'drain_timeout = "2h"\n[[listen]]\nport = 0\n'
    f["err-bad-address"] = '[[listen]]\naddress = "localhost"\nport = 0\n'
    f["err-duplicate-name"] = '[[listen]]\nname = "a"\nport = 0\n[[listen]]\nname = "a"\nport = 0\n'
    f["err-same-port"] = '[[listen]]\naddress = "::"\nport = 9\n[[listen]]\naddress = "127.0.0.1"\nport = 9\n'
    f["err-empty-name"] = '[[listen]]\nname = ""\nport = 0\n'
    f["err-log-level"] = 'log_level = "loud"\n[[listen]]\nport = 0\n'
    f["err-limits-type"] = 'limits = 3\n[[listen]]\nport = 0\n'
    f["err-type"] = 'workers = "two"\n[[listen]]\nport = 0.5\n'
    f["err-nul"] = b'workers = 1\x00\n[[listen]]\nport = 0\n'
    f["err-utf8"] = b'[[listen]]\nname = "\xff\xfe"\nport = 0\n'
    return f


# fuzz_loop: listener indices of kConfig in fuzz_loop.cpp.
RAW, RAW_HW1K, FIXED1, FIXED7, FIXED600, LENGTH, LENGTH16, LENGTH_HW1K, LINE, LINE16 = range(10)


def loop_header(listener, chunk_shape, sync=False, lazy=False, small=False, repeat=0, seed=0):
    """repeat: 0-3 for 1, 2, 8 or 32 times over."""
    flags = (chunk_shape & 7) | (0x08 if sync else 0) | (0x10 if lazy else 0) | (0x20 if small else 0) | (repeat << 6)
    return bytes([listener, flags, seed])


def loop():
    f = {}
    f["raw-empty"] = loop_header(RAW, 0)
    f["raw-text"] = loop_header(RAW, 2) + b"hello, echo\n"
    f["raw-sync-bytes"] = loop_header(RAW, 0, sync=True) + bytes(range(64))
    f["raw-hw1k-lazy"] = loop_header(RAW_HW1K, 7, lazy=True) + bytes(i % 256 for i in range(4000))
    f["raw-hw1k-sync"] = loop_header(RAW_HW1K, 6, sync=True, lazy=True, seed=1) + b"B" * 3000
    f["raw-hw1k-backpressure"] = loop_header(RAW_HW1K, 5, lazy=True, small=True, repeat=2) + bytes(i % 253 for i in range(2000))
    f["length-hw1k-backpressure"] = loop_header(LENGTH_HW1K, 6, lazy=True, small=True, repeat=3, seed=2) + length_frame(b"p" * 990) * 2
    f["line-small-buffers"] = loop_header(LINE, 4, small=True, repeat=1) + b"line of text\n" * 100
    f["line16-repeat-too-large"] = loop_header(LINE16, 3, lazy=True, small=True, repeat=2) + b"ok\n" + b"x" * 10
    f["fixed1"] = loop_header(FIXED1, 3) + b"0123456789"
    f["fixed7-tail"] = loop_header(FIXED7, 1, sync=True) + b"abcdefg" * 5 + b"xyz"
    f["fixed600"] = loop_header(FIXED600, 6, seed=3) + bytes(1300)
    f["length"] = loop_header(LENGTH, 4) + length_frame(b"hello") + length_frame(b"") + length_frame(b"w" * 300)
    f["length-incomplete"] = loop_header(LENGTH, 2, sync=True) + length_frame(b"ok") + struct.pack(">I", 9) + b"abc"
    f["length-too-large"] = loop_header(LENGTH, 5) + length_frame(b"a") + struct.pack(">I", 4097) + b"x" * 20
    f["length-huge-header"] = loop_header(LENGTH, 0, sync=True) + b"\xff\xff\xff\xff"
    f["length16-too-large"] = loop_header(LENGTH16, 3) + length_frame(b"x" * 16) + length_frame(b"y" * 17)
    f["length-hw1k-lazy"] = loop_header(LENGTH_HW1K, 7, lazy=True) + length_frame(bytes(900)) * 3
    f["line"] = loop_header(LINE, 3) + b"GET / HTTP/1.0\r\n\r\nno newline"
    f["line-sync"] = loop_header(LINE, 0, sync=True, seed=9) + b"a\nbb\n\nccc\n"
    f["line16-too-large"] = loop_header(LINE16, 2) + b"short\n" + b"z" * 40 + b"\n"
    f["line16-exact"] = loop_header(LINE16, 1) + b"0123456789abcdef\n" * 3
    return f


def main():
    write("fuzz_framer_fixed", fixed())
    write("fuzz_framer_length", length())
    write("fuzz_framer_line", line())
    write("fuzz_config", config())
    write("fuzz_loop", loop())
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes")


if __name__ == "__main__":
    os.umask(0o022)
    main()
