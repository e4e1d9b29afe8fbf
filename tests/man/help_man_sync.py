#!/usr/bin/env python3
"""Every option in `PROGRAM --help` is documented in the man page and offered by the bash
completion, and the other way round.

help:       lines indented by at most 8 spaces whose first character is '-' are option
            lines; the option column ends at the first run of two spaces (or the line's end);
            every -x / --long-name in it is an option. Deeper indented lines are descriptions,
            even when they start with an option name.
man page:   mdoc. The documented options are the Fl arguments on the .It lines of the OPTIONS
            section. Fl takes its arguments up to the next macro: "Fl c" is -c, "Fl -config"
            is --config, "Fl JqV" is -J -q -V; punctuation (, | ...) is skipped. Every Fl
            elsewhere in the page (SYNOPSIS, EXAMPLES, ...) must name a real option too.
completion: the words of the `compgen -W '...'` after `[[ $cur == -* ]]`.
usage: help_man_sync.py PROGRAM MANPAGE COMPLETION
"""
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])--?[A-Za-z0-9][A-Za-z0-9-]*")
MACRO = re.compile(r"^[A-Z][a-z][a-z]?$")
PUNCT = {",", ";", ":", ".", "|", "(", ")", "[", "]", "!", "?"}


def help_options(program):
    out = subprocess.run([program, "--help"], capture_output=True, text=True, check=True).stdout
    options = set()
    for line in out.splitlines():
        m = re.match(r"^( {1,8})(-.*)$", line)
        if not m:
            continue
        column = re.split(r"\s{2,}", m.group(2), maxsplit=1)[0]
        options.update(OPTION.findall(column))
    return options


def fl_arguments(line):
    """The options a line of mdoc names with Fl."""
    tokens = line.lstrip(".").split()
    found = []
    in_fl = False
    for tok in tokens:
        if tok == "Fl":
            in_fl = True
            continue
        if MACRO.match(tok):
            in_fl = False
            continue
        if not in_fl or tok in PUNCT:
            continue
        arg = tok.replace("\\-", "-").replace("\\&", "")
        if arg.startswith("-"):
            found.append("-" + arg)  # Fl -config: --config
        elif len(arg) > 1:
            found.extend("-" + ch for ch in arg)  # Fl JqV: -J -q -V
        elif arg:
            found.append("-" + arg)
    return found


def man_options(page):
    documented, mentioned = set(), {}
    section = None
    for number, line in enumerate(open(page, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if not line.startswith("."):
            continue
        if line.startswith(".Sh "):
            section = line[4:].strip()
            continue
        names = fl_arguments(line)
        for name in names:
            mentioned.setdefault(name, number)
        if section == "OPTIONS" and line.startswith(".It "):
            documented.update(names)
    return documented, mentioned


def completion_options(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"\[\[ \$cur == -\* \]\].*?compgen -W '([^']*)'", text, re.S)
    if not m:
        sys.exit(f"{path}: no `compgen -W '...'` after `[[ $cur == -* ]]`")
    return set(OPTION.findall(m.group(1)))


def main():
    program, page, completion = sys.argv[1:4]
    helped = help_options(program)
    if len(helped) < 3:
        sys.exit(f"{program} --help: found only {sorted(helped)}; has the format changed?")
    documented, mentioned = man_options(page)
    offered = completion_options(completion)
    problems = []
    for name in sorted(helped - documented):
        problems.append(f"{name}: in --help, not documented in OPTIONS of {page}")
    for name in sorted(documented - helped):
        problems.append(f"{name}: documented in OPTIONS of {page}, not in --help")
    for name, number in sorted(mentioned.items()):
        if name not in helped:
            problems.append(f"{page}:{number}: Fl {name} is not an option of {program}")
    for name in sorted(helped - offered):
        problems.append(f"{name}: in --help, not offered by the completion {completion}")
    for name in sorted(offered - helped):
        problems.append(f"{name}: offered by the completion {completion}, not in --help")
    print(f"{program}: {len(helped)} options in --help: {' '.join(sorted(helped))}")
    print(f"{page}: {len(documented)} in OPTIONS; {completion}: {len(offered)} offered")
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
