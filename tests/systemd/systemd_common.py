"""Helpers for the systemd-facing tests: a NOTIFY_SOCKET listener, tcpechod with a config file
the test rewrites (for SIGHUP), and a way to wedge one worker thread (ptrace).

Every process started here is killed by PID in cleanup; every wait has a time limit.
"""

import ctypes
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'probe'))
from probe_common import PROBE, TCPECHOD, kill_process, run_probe, stop_process  # noqa: E402,F401
from tcpecho_testlib import DaemonLog, listen_tables  # noqa: E402 (on sys.path via probe_common)


class NotifyListener:
    """The service manager's end of sd_notify(3): a datagram socket in a temp dir."""

    def __init__(self, directory):
        self.path = os.path.join(directory, 'notify.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {field: value})
        self.cursor = 0     # wait_for() looks at messages from here on

    def close(self):
        self.sock.close()

    def poll(self, seconds):
        """Collect messages for `seconds`; returns the new ones."""
        new = []
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            fields = {}
            for line in data.decode().split('\n'):
                if '=' in line:
                    k, v = line.split('=', 1)
                    fields[k] = v
            new.append((time.monotonic(), fields))
        self.messages += new
        return new

    def wait_for(self, key, value=None, timeout=10.0):
        """The next message (after the one the previous wait_for returned) with `key`
        (= `value`), polling up to `timeout`; returns its fields."""
        end = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.messages):
                fields = self.messages[self.cursor][1]
                self.cursor += 1
                if key in fields and (value is None or fields[key] == value):
                    return fields
            if time.monotonic() >= end:
                break
            self.poll(min(0.1, max(0.0, end - time.monotonic())))
        raise AssertionError('no %s%s from the daemon within %.0f s; got: %r' % (
            key, '' if value is None else '=' + value, timeout,
            [f for _, f in self.messages][-10:]))


def free_port(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago on 127.0.0.1 (for systemd-socket-activate -l)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ConfigDaemon(DaemonLog):
    """tcpechod on a config file the test may rewrite; listeners on port 0 unless given."""

    LISTEN_RE = re.compile(r'(?:listening|reload: serving) name=(\S+) proto=(\S+) .*?address=(\S+)')

    def __init__(self, workers=2):
        self.tmp = tempfile.TemporaryDirectory(prefix='tcpecho-systemd-test-')
        self.config_path = os.path.join(self.tmp.name, 'tcpechod.toml')
        self.stderr_path = os.path.join(self.tmp.name, 'tcpechod.stderr')
        self.workers = workers
        self.proc = None
        self._stderr = None

    @staticmethod
    def config_text(listeners, workers=2, extra=''):
        """listeners: dicts with name, and optional proto, mode, port, address, 'extra' lines."""
        lines = ['workers = %d' % workers, 'log_level = "info"', extra]
        return '\n'.join(lines + listen_tables(listeners)) + '\n'

    def write_config(self, text):
        # Written whole and renamed into place: a reload never reads half a file.
        tmp = self.config_path + '.new'
        with open(tmp, 'w') as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def start(self, text, env=None, argv_prefix=(), wait_ready=True, timeout=15.0):
        self.write_config(text)
        self._stderr = open(self.stderr_path, 'w+')
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(list(argv_prefix) + [TCPECHOD, '-c', self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=full_env)
        if wait_ready:
            self.wait_log('ready:', timeout=timeout)
        return self

    def addresses(self):
        """{(name, proto): 'host:port'} from the latest listening/serving lines."""
        out = {}
        for m in self.LISTEN_RE.finditer(self.log()):
            out[(m.group(1), m.group(2))] = m.group(3)
        return out

    def port(self, name, proto='tcp'):
        return int(self.addresses()[(name, proto)].rsplit(':', 1)[1])

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        return stop_process(self.proc, timeout)

    def cleanup(self):
        if self.proc is not None:
            kill_process(self.proc)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.tmp.cleanup()


# --- Wedging one thread: ptrace(PTRACE_SEIZE) + PTRACE_INTERRUPT stops only that thread (no
# group stop), which is what a worker stuck in a loop looks like from outside.

_PTRACE_DETACH = 17
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_WALL = 0x40000000


def thread_ids(pid, comm):
    out = []
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                if f.read().strip() == comm:
                    out.append(int(tid))
        except OSError:
            pass
    return out


class WedgedThread:
    """Context manager: thread `tid` stays stopped inside the block."""

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long

    def _ptrace(self, request):
        if self.libc.ptrace(request, self.tid, None, None) != 0:
            e = ctypes.get_errno()
            raise OSError(e, 'ptrace(%#x, %d): %s' % (request, self.tid, os.strerror(e)))

    def __enter__(self):
        self._ptrace(_PTRACE_SEIZE)
        self._ptrace(_PTRACE_INTERRUPT)
        os.waitpid(self.tid, _WALL)  # the thread has stopped
        return self

    def __exit__(self, *exc):
        self._ptrace(_PTRACE_DETACH)
        return False


def ptrace_permitted():
    """Whether this process may ptrace its children (root, no seccomp veto)."""
    child = subprocess.Popen(['sleep', '5'])
    try:
        with WedgedThread(child.pid):
            pass
        return True
    except OSError:
        return False
    finally:
        kill_process(child)
