#!/usr/bin/env python3
"""Count the module-level public items of a cargo-public-api listing (api/public-api.txt):
items whose parent path is a module (the crate root included), re-exports included; methods,
fields, variants and impls not counted. `--list` prints them.

    python3 scripts/count-public-items.py api/public-api.txt [--list]
"""
import collections
import re
import sys


def strip_generics(s):
    out, depth = [], 0
    for ch in s:
        if ch == "<":
            depth += 1
            continue
        if ch == ">":
            depth -= 1
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def items(path):
    found = set()
    for line in open(path, encoding="utf-8"):
        line = re.sub(r"^(#\[[^\]]*\] )+", "", line.rstrip("\n"))
        m = re.match(
            r"^pub (?:unsafe |async |const )*(mod|struct|enum|trait|const|fn|type|macro|use|static) (.*)$",
            line,
        )
        if not m:
            continue
        kind, rest = m.group(1), strip_generics(m.group(2))
        name = re.split(r"[\s(:]\s|\(|: | =|$", rest)[0].split("(")[0].strip()
        segs = name.split("::")
        if len(segs) < 2:
            continue
        parent = segs[-2]
        # A module's path segments are lower case; a type's items (methods, fields) are not
        # module-level.
        if kind == "use" or parent[:1].islower():
            found.add((kind, name))
    return found


def main():
    found = items(sys.argv[1])
    kinds = collections.Counter(k for k, _ in found)
    print(f"{len(found)} module-level public items: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
    if "--list" in sys.argv[2:]:
        for kind, name in sorted(found, key=lambda x: x[1]):
            print(f"{kind} {name}")


if __name__ == "__main__":
    main()
