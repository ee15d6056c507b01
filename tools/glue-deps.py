#!/usr/bin/env python3
"""tools/glue-deps.py — the dependency order of the PostgreSQL glue.

Reads src/pg/*.c, finds each file's non-static functions and variables, and
which other files name them. Prints each module's layer (one more than the
highest layer it uses) and its uses, as src/pg/README.md tabulates them, and
exits 1 if the uses form a cycle: the glue's rule is that calls only go
down (src/pg/README.md). Settings (settings.c, the GUC variables every
module reads) are layer 0 and left out of the listing.

Usage: tools/glue-deps.py [src/pg]
"""
import os
import re
import sys


def strip(text):
    """Source without comments, string and character literals."""
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    return re.sub(r"'(?:\\.|[^'\\\n])*'", "''", text)


def exported_names(text):
    """Non-static functions (name at the start of a line, as pgindent puts
    them) and non-static file-level variables."""
    names = set()
    for m in re.finditer(r'^(?!static\b|extern\b|typedef\b|#)[A-Za-z_][\w \t\*]*\n(\w+)\(',
                         text, flags=re.M):
        names.add(m.group(1))
    for m in re.finditer(r'^(?!static\b|extern\b|typedef\b|#|return\b)'
                         r'(?:const\s+)?[A-Za-z_]\w*[\s\*]+(\w+)\s*(?:=|;|\[)',
                         text, flags=re.M):
        names.add(m.group(1))
    return names


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else 'src/pg'
    files = sorted(f for f in os.listdir(folder) if f.endswith('.c'))
    text = {f: strip(open(os.path.join(folder, f)).read()) for f in files}
    owner = {}
    for f in files:
        for name in exported_names(text[f]):
            owner.setdefault(name, f)
    uses = {f: set() for f in files}
    for f in files:
        words = set(re.findall(r'\b\w+\b', text[f]))
        for name in words:
            o = owner.get(name)
            if o is not None and o != f:
                uses[f].add(o)

    layer = {}

    def layer_of(f, path):
        if f in path:
            cycle = path[path.index(f):] + [f]
            print('cycle: ' + ' -> '.join(cycle), file=sys.stderr)
            sys.exit(1)
        if f not in layer:
            layer[f] = 1 + max((layer_of(u, path + [f]) for u in uses[f]), default=-1)
        return layer[f]

    for f in files:
        layer_of(f, [])
    for f in sorted(files, key=lambda f: (layer[f], f)):
        shown = sorted((u for u in uses[f] if u != 'settings.c'),
                       key=lambda u: (-layer[u], u))
        print('%2d  %-18s %s' % (layer[f], f, ', '.join(u[:-2] for u in shown) or '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
