#!/usr/bin/python3
"""Checks that the includes of core/ point down its layers, and that core/ has no Qt.

The layers are ARCHITECTURE.md's, from the ground up; folders on one level may
include each other as long as no two include each other. A file of a folder may
include its own folder, any folder of a lower level, and the standard and third-party
headers; an include of a higher level, of ui/ or app/, of a core/ folder missing from
LAYERS, or of Qt fails, one line per include naming the file and line.

Usage: /usr/bin/python3 tools/check_layers.py [REPOSITORY]  (default: this script's)
Exit status 0 when every include points down, 1 otherwise.
"""
import os
import re
import sys

# ARCHITECTURE.md "Layers", from the ground up; a new folder of core/ goes here too.
LAYERS = [
    ["util", "jobs"],
    ["store"],
    ["graph", "data"],
    ["runtime"],
    ["measure"],
    ["quant"],
    ["analysis"],
    ["export", "interop"],
    ["record"],
]
ABOVE_CORE = ["ui", "app", "cli", "gui"]  # app/cli and app/gui include as "cli/..." and "gui/..."
SOURCES = (".h", ".hpp", ".cpp", ".cc", ".inc")

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
QT = re.compile(r"^(Qt[A-Za-z]*/|Q[A-Z][A-Za-z0-9]*(\.h)?$|qcustomplot\.h$)")


def level_of(folder):
    for i, names in enumerate(LAYERS):
        if folder in names:
            return i
    return None


def order_text():
    return "; ".join(", ".join(names) for names in LAYERS)


def check(root):
    core = os.path.join(root, "core")
    if not os.path.isdir(core):
        return [f"{core}: no such folder"]
    core_dirs = {d for d in os.listdir(core) if os.path.isdir(os.path.join(core, d))}
    errors = []
    edges = {}  # folder -> {included folder: first "file:line" seen}
    for folder in sorted(core_dirs):
        if level_of(folder) is None:
            errors.append(f"core/{folder}/: folder missing from the layer order of tools/check_layers.py "
                          "(add it there and to ARCHITECTURE.md)")
            continue
        for dirpath, dirnames, filenames in os.walk(os.path.join(core, folder)):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCES):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        where = f"{rel}:{number}"
                        header = m.group(2)
                        if QT.match(header):
                            errors.append(f"{where}: includes Qt ({header}); core/ never includes Qt")
                            continue
                        if m.group(1) != '"' or "/" not in header:
                            continue
                        target = header.split("/", 1)[0]
                        if target in ABOVE_CORE:
                            errors.append(f"{where}: includes {header}, above core/")
                            continue
                        if target not in core_dirs or target == folder:
                            continue
                        if level_of(target) is None:
                            continue  # reported once for the folder itself
                        edges.setdefault(folder, {}).setdefault(target, where)
                        if level_of(target) > level_of(folder):
                            errors.append(f"{where}: {folder}/ includes {header}, a layer above it")
    errors += cycles(edges)
    return errors


def cycles(edges):
    """Cycles among folders (same level ones; the level check reports the others too)."""
    out, state, stack = [], {}, []

    def visit(folder):
        state[folder] = "open"
        stack.append(folder)
        for target in sorted(edges.get(folder, {})):
            if state.get(target) == "open":
                loop = stack[stack.index(target):] + [target]
                hops = ", ".join(edges[a][b] for a, b in zip(loop, loop[1:]))
                out.append(f"core/: include cycle {' -> '.join(loop)} ({hops})")
            elif target not in state:
                visit(target)
        stack.pop()
        state[folder] = "done"

    for folder in sorted(edges):
        if folder not in state:
            visit(folder)
    return out


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = check(root)
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} include(s) against the layers of core/ "
              f"(from the ground up: {order_text()})")
        return 1
    print(f"check_layers: core/ includes point down ({order_text()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
