#!/usr/bin/env python3
"""Every key of etc/tcpechod.toml is documented in tcpechod.toml(5), and the other way round;
and every documented key is one daemon/service/config_loader.cpp knows.

Keys of the file are named "KEY" (top level), "limits.KEY", "listen.KEY" (any [[listen]]
table) and "metrics.KEY" (the [metrics] table, shipped commented out: "# KEY = value" lines
after "# [metrics]"). They are the keys the file sets (read with tomllib) plus the optional [[listen]] keys
it documents only in its comment block: the lines "#   KEY text" (a key name three spaces
after '#', then its description) that follow "# One table per listening socket." (frame_size is such a key: the shipped file has no fixed-mode listener).

Keys of the page are the first Ic argument of each .It line under the subsections
".Ss Top-level keys", ".Ss The [limits] table", ".Ss The [[listen]] tables" and ".Ss The
[metrics] table" (all four must exist). A [[listen]] table may also set the [limits] keys; those are documented once, under
[limits], and not counted as listen keys on either side.
usage: config_man_sync.py TOML MANPAGE CONFIG_CPP
"""
import re
import sys
import tomllib

SUBSECTIONS = {
    "Top-level keys": "",
    "The [limits] table": "limits.",
    "The [[listen]] tables": "listen.",
    "The [metrics] table": "metrics.",
}


def file_keys(path):
    text = open(path, encoding="utf-8").read()
    data = tomllib.loads(text)
    keys = set()
    limit_keys = set()
    for key, value in data.items():
        if key == "limits":
            limit_keys.update(value)
            keys.update("limits." + k for k in value)
        elif key == "listen":
            for table in value:
                keys.update("listen." + k for k in table if k not in limit_keys)
        elif key != "metrics":
            keys.add(key)
    # Optional [[listen]] keys documented in the comment block.
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith("# One table per listening socket"))
    except StopIteration:
        sys.exit(f"{path}: the comment block '# One table per listening socket.' is missing")
    documented = set()
    for line in lines[start + 1:]:
        if not line.startswith("#"):
            break
        m = re.match(r"^#   ([a-z_]+) +\S", line)
        if m:
            documented.add(m.group(1))
    if not documented:
        sys.exit(f"{path}: no '#   KEY text' lines after '# One table per listening socket.'")
    keys.update("listen." + k for k in documented if k not in limit_keys)
    # The [metrics] table is shipped commented out ("# [metrics]", then "# KEY = value" lines).
    in_metrics = False
    for line in lines:
        if re.match(r"^# \[metrics\]\s*$", line):
            in_metrics = True
            continue
        m = re.match(r"^# ([a-z_]+) = ", line) if in_metrics else None
        if m:
            keys.add("metrics." + m.group(1))
        elif in_metrics:
            in_metrics = False
    if "metrics" in data:
        keys.update("metrics." + k for k in data["metrics"])
    return keys, {k.split(".", 1)[1] for k in keys if k.startswith("listen.")} - documented


def page_keys(path):
    keys = {}
    prefix = None
    seen = set()
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith(".Sh "):
            prefix = None
        elif line.startswith(".Ss "):
            title = line[4:].strip().strip('"')
            prefix = SUBSECTIONS.get(title)
            if prefix is not None:
                seen.add(title)
        elif prefix is not None and line.startswith(".It Ic "):
            key = line.split()[2]
            keys[prefix + key] = number
    missing = set(SUBSECTIONS) - seen
    if missing:
        sys.exit(f"{path}: subsection(s) missing: {', '.join(sorted(missing))}")
    return keys


def main():
    toml_path, page, config_cpp = sys.argv[1:4]
    in_file, undocumented_in_comment = file_keys(toml_path)
    in_page = page_keys(page)
    parser = open(config_cpp, encoding="utf-8").read()
    problems = []
    for key in sorted(in_file - set(in_page)):
        problems.append(f"{key}: in {toml_path}, not documented in {page}")
    for key in sorted(set(in_page) - in_file):
        problems.append(f"{page}:{in_page[key]}: {key} is not in {toml_path}")
    for key in sorted(undocumented_in_comment):
        problems.append(f"listen.{key}: set in {toml_path} but not in its '#   KEY' comment block")
    for key, number in sorted(in_page.items()):
        if f'"{key.rsplit(".", 1)[-1]}"' not in parser:
            problems.append(f"{page}:{number}: {key} is not a key {config_cpp} reads")
    print(f"{toml_path}: {len(in_file)} keys; {page}: {len(in_page)} keys")
    print("  " + " ".join(sorted(in_file)))
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
