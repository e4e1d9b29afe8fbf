#!/usr/bin/env python3
"""check_layers.py can fail: on a small tree, a clean layering passes, and an upward include,
an outside library used outside its file, strerror() and errno in too many files each fail."""

import os
import subprocess
import sys
import tempfile
import unittest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'check_layers.py')
CLEAN = {
    'lib/fd.cpp': '#include "lib/fd.hpp"\nint f() { return errno; }\n',
    'daemon/base/loop.cpp': '#include <ev.h>\n#include "lib/fd.hpp"\n',
    'daemon/tcp/connection.cpp': '#include "daemon/base/loop.hpp"\n#include "lib/fd.hpp"\n',
    'daemon/worker.cpp': '#include "daemon/tcp/connection.hpp"\n#include "daemon/balancer.hpp"\n',
    'daemon/service/server.cpp': '#include "daemon/worker.hpp"\n#include "build_config.hpp"\n',
    'tools/probe.cpp': '#include "lib/fd.hpp"\n// errno in a comment does not count\n',
}


def run(files):
    with tempfile.TemporaryDirectory() as root:
        # The checker refuses a tree with too few sources (a wrong root): pad it.
        padded = dict(files)
        for i in range(20):
            padded['lib/pad%d.hpp' % i] = '#pragma once\n'
        for path, text in padded.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), 'w') as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout


class CheckLayersTests(unittest.TestCase):
    def test_clean_tree_passes(self):
        rc, out = run(CLEAN)
        self.assertEqual(rc, 0, out)

    def fails_with(self, change, text):
        rc, out = run(dict(CLEAN, **change))
        self.assertEqual(rc, 1, out)
        self.assertIn(text, out)

    def test_upward_include_fails(self):
        self.fails_with({'daemon/tcp/connection.cpp': '#include "daemon/worker.hpp"\n'}, 'above its layer')
        self.fails_with({'lib/fd.cpp': '#include "daemon/base/log.hpp"\n'}, 'above its layer')
        self.fails_with({'tools/probe.cpp': '#include "daemon/base/loop.hpp"\n'}, 'above its layer')
        self.fails_with({'daemon/udp/echo.cpp': '#include "loop.hpp"\n'}, 'not named by layer')

    def test_confined_library_fails_elsewhere(self):
        self.fails_with({'daemon/worker.cpp': '#include <ev.h>\n'}, 'only daemon/base/loop.cpp may')
        self.fails_with({'daemon/service/server.cpp': '#include <systemd/sd-daemon.h>\n'}, 'may')

    def test_strerror_and_errno_spread_fail(self):
        self.fails_with({'tools/probe.cpp': 'const char* s = strerror(1);\n'}, 'strerror')
        many = {'tools/e%d.cpp' % i: 'int x = errno;\n' for i in range(5)}
        self.fails_with(many, 'errno is read in 6 files')


if __name__ == '__main__':
    unittest.main(verbosity=2)
