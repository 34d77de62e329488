#!/usr/bin/env python3
"""The modules of src/ depend on each other without a cycle (the layers of CONTRIBUTING.md's table).

A module is a top-level entry of src/ (`envelope.rs`, `session/`, ...). An edge A -> B is any
`crate::B` path (in a `use`, a type, a call, a macro) in A's files, outside comments and strings.
Prints the graph in layer order and fails on a cycle, naming it. Run by `make test` (layers).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    out = {}
    for entry in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, entry)
        name = entry[:-3] if entry.endswith(".rs") else entry
        if name in ("lib", "main"):
            continue
        files = []
        if os.path.isdir(path):
            for dirpath, _, names in os.walk(path):
                files += [os.path.join(dirpath, n) for n in names if n.endswith(".rs")]
        elif entry.endswith(".rs"):
            files.append(path)
        out.setdefault(name, []).extend(files)
    return out


def code_of(text):
    # Drop line comments (doc comments too: intra-doc links are not dependencies), block
    # comments and string literals.
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'\br#+".*?"#+', '""', text, flags=re.S)
    text = re.sub(r"'(\\.|[^'\\])'", "' '", text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def top_level_names(code, at):
    """The first path segments after `crate::` at `at`: one name, or each name of a `{...}` group."""
    if at < len(code) and code[at] == "{":
        names, depth, start = [], 0, at + 1
        for i in range(at, len(code)):
            c = code[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    names.append(code[start:i])
                    break
            elif c == "," and depth == 1:
                names.append(code[start:i])
                start = i + 1
        return [re.match(r"\s*(\w*)", n).group(1) for n in names]
    m = re.match(r"\w+", code[at:])
    return [m.group(0)] if m else []


def edges(mods):
    graph = {m: set() for m in mods}
    for m, files in mods.items():
        for f in files:
            code = code_of(open(f, encoding="utf8").read())
            # `crate::x` and grouped imports `crate::{x, y::{z, w}}` (top-level names only).
            for hit in re.finditer(r"crate::", code):
                for n in top_level_names(code, hit.end()):
                    if n in mods and n != m:
                        graph[m].add(n)
    return graph


def cycle(graph):
    state = {}
    stack = []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main():
    graph = edges(modules())
    found = cycle(graph)
    if found:
        print("layers: dependency cycle between modules: " + " -> ".join(found), file=sys.stderr)
        for n in found[:-1]:
            print(f"  {n} uses {', '.join(sorted(graph[n]))}", file=sys.stderr)
        return 1
    # Layer order: a module after everything it uses.
    order, seen = [], set()

    def place(n):
        if n in seen:
            return
        seen.add(n)
        for d in sorted(graph[n]):
            place(d)
        order.append(n)

    for n in sorted(graph):
        place(n)
    for n in order:
        print(f"layers: {n:<11} uses {', '.join(sorted(graph[n])) or '-'}")
    print(f"layers: {len(graph)} modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
