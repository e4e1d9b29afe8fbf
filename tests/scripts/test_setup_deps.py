#!/usr/bin/env python3
"""scripts/setup-deps.sh: the demo installs what building and running need, the test command
the rest (the demo once installed lintian, rpm, debootstrap and a hundred packages more
to run the main job)."""

import os
import re
import subprocess
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
SETUP = os.path.join(ROOT, 'scripts', 'setup-deps.sh')

# Tools only the test suite uses: none of them may come with the demo.
TEST_ONLY = {'catch2', 'clang', 'libclang-rt-14-dev', 'lintian', 'rpm', 'rpmlint', 'debhelper',
             'dpkg-dev', 'debootstrap', 'systemd-container', 'systemd', 'nftables', 'iptables',
             'ethtool', 'strace', 'mandoc', 'man-db', 'libnetfilter-queue-dev'}


def listed(which):
    out = subprocess.run(['bash', SETUP, '--list', which], stdout=subprocess.PIPE, check=True,
                         text=True, timeout=30).stdout
    return set(out.split())


class SetupDeps(unittest.TestCase):

    def test_demo_installs_only_what_building_and_running_need(self):
        demo = listed('demo')
        self.assertEqual(demo & TEST_ONLY, set())
        self.assertLessEqual(len(demo), 10, demo)

    def test_demo_covers_every_library_the_build_looks_for(self):
        """meson.build's required dependencies, mapped to their Debian packages."""
        with open(os.path.join(ROOT, 'meson.build')) as f:
            build = f.read()
        needs = {'g++', 'meson', 'ninja-build', 'pkg-config', 'python3'}
        package_of = {'ev': 'libev-dev', 'tomlplusplus': 'libtomlplusplus-dev', 'libsystemd': 'libsystemd-dev'}
        found = re.findall(r"(?:find_library|dependency)\('([^']+)'(?![^)]*required : false)", build)
        for name in found:
            if name in ('threads',):
                continue
            self.assertIn(name, package_of, 'meson.build needs %r: map it to its Debian package here' % name)
            needs.add(package_of[name])
        self.assertLessEqual(needs, listed('demo'))

    def test_the_test_list_holds_the_demo_list(self):
        self.assertLessEqual(listed('demo'), listed('test'))
        self.assertLessEqual(TEST_ONLY, listed('test'))

    def test_demo_and_test_scripts_ask_for_their_own_list(self):
        with open(os.path.join(ROOT, 'scripts', 'demo.sh')) as f:
            self.assertRegex(f.read(), r'(?m)^scripts/setup-deps\.sh demo$')
        with open(os.path.join(ROOT, 'scripts', 'test.sh')) as f:
            self.assertRegex(f.read(), r'(?m)^scripts/setup-deps\.sh( test)?$')

    def test_unknown_set_is_a_usage_error(self):
        p = subprocess.run(['bash', SETUP, '--list', 'everything'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p)


if __name__ == '__main__':
    unittest.main(verbosity=2)
