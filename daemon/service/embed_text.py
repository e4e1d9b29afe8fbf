#!/usr/bin/env python3
"""Turns a text file into a C++ header holding it as a std::string_view (the embedded default
config is the shipped etc/tcpechod.toml, so the two can never disagree)."""
import sys

src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src, encoding="utf-8").read()
delim = "tcpecho_embed"
if ")" + delim + '"' in text:
    sys.exit(f"{src}: contains the raw-string delimiter")
with open(dst, "w", encoding="utf-8") as out:
    out.write("// Generated from %s by embed_text.py; do not edit.\n#pragma once\n#include <string_view>\n" % src)
    out.write('inline constexpr std::string_view %s = R"%s(%s)%s";\n' % (name, delim, text, delim))
