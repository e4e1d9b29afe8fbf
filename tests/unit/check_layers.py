#!/usr/bin/env python3
"""The layers of docs/architecture.md, checked on the source: every #include of a project
header stays in its own layer or goes down, each outside library is used from its one file,
and errno is read in few places. Exit 1 with one line per violation.

  check_layers.py SOURCE_ROOT
"""

import pathlib
import re
import sys

# Layer of a file (first matching prefix) -> the prefixes it may include.
LAYERS = [
    ('lib/', ['lib/']),
    ('daemon/base/', ['lib/', 'daemon/base/']),
    ('daemon/tcp/', ['lib/', 'daemon/base/', 'daemon/tcp/']),
    ('daemon/udp/', ['lib/', 'daemon/base/', 'daemon/udp/']),
    ('daemon/metrics/', ['lib/', 'daemon/base/', 'daemon/metrics/']),
    ('daemon/service/', ['lib/', 'daemon/', 'build_config.hpp']),
    # The worker level: the files directly in daemon/ ('daemon/*' is any of them).
    ('daemon/', ['lib/', 'daemon/base/', 'daemon/tcp/', 'daemon/udp/', 'daemon/metrics/', 'daemon/*']),
    ('tools/', ['lib/', 'tools/', 'build_config.hpp']),
]
# An outside library -> the only files that may include it.
CONFINED = {
    '<ev.h>': {'daemon/base/loop.cpp'},
    '<toml++/': {'daemon/service/config_loader.cpp'},
    '<systemd/': {'daemon/service/notify.cpp', 'daemon/service/socket_activation.cpp'},
}
MAX_ERRNO_FILES = 5
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def main():
    root = pathlib.Path(sys.argv[1])
    problems = []
    errno_files = []
    files = sorted(p for d in ('lib', 'daemon', 'tools') for p in (root / d).rglob('*')
                   if p.suffix in ('.cpp', '.hpp'))
    if len(files) < 20:
        problems.append('only %d sources found under %s: wrong root?' % (len(files), root))
    for path in files:
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        allowed = next(a for prefix, a in LAYERS if rel.startswith(prefix))
        for kind, name in INCLUDE.findall(text):
            if kind == '"':
                if not any(name.startswith(a) or (a == 'daemon/*' and re.fullmatch(r'daemon/[^/]+', name))
                           for a in allowed):
                    problems.append('%s includes "%s": above its layer (or not named by layer)' % (rel, name))
            else:
                for lib, owners in CONFINED.items():
                    if ('<' + name + '>').startswith(lib) and rel not in owners:
                        problems.append('%s includes <%s>: only %s may' % (rel, name, ', '.join(sorted(owners))))
        code = re.sub(r'//[^\n]*', '', text)
        if re.search(r'\berrno\b(?!_text)', code):
            errno_files.append(rel)
        if re.search(r'\bstrerror\s*\(', code):
            problems.append('%s calls strerror(), which is not thread-safe: use errno_text()' % rel)
    if len(errno_files) > MAX_ERRNO_FILES:
        problems.append('errno is read in %d files (at most %d): %s' % (len(errno_files), MAX_ERRNO_FILES,
                                                                       ', '.join(errno_files)))
    for p in problems:
        print(p)
    print('%d files, errno read in %d (%s), %d problems' % (len(files), len(errno_files), ', '.join(errno_files),
                                                            len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
