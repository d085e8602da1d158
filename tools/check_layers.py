#!/usr/bin/python3
"""Checks that the includes of core/ and ui/ point one way (ARCHITECTURE.md, "Layers").

core/: folders are layered, from the ground up as in LAYERS; folders on one level may
include each other as long as no two include each other. A file may include its own
folder, a folder of a lower level, and standard and third-party headers; an include of
a higher level, of ui/ or app/, of a core/ folder missing from LAYERS, or of Qt fails.

ui/: widgets/, jobs/ and document/ are shared, in that order from the ground up, and
include no feature folder; a feature folder may include the shared ones and other
features as long as no two include each other; ui/main_window.h is included only by
main_window.cpp and the features' *_feature files (their install()); ui/ never
includes app/.

Every failure is one line naming the file and line. Usage:
    /usr/bin/python3 tools/check_layers.py [REPOSITORY]   (default: this script's)
Exit status 0 when every include points the right way, 1 otherwise.
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
    ["train"],
    ["analysis"],
    ["export", "interop"],
    ["record"],
    ["cluster"],
]
# The shared folders of ui/, from the ground up; every other folder is a feature.
UI_SHARED = ["widgets", "jobs", "document"]
APP = ["cli", "gui"]  # app/cli and app/gui include their own files as "cli/..." and "gui/..."
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


def includes(root, folder):
    """(file:line, file name, quoted?, header) of every #include under root/folder."""
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(SOURCES):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m:
                        yield f"{rel}:{number}", name, m.group(1) == '"', m.group(2)


def subfolders(path):
    return {d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))}


def check_core(root):
    core_dirs = subfolders(os.path.join(root, "core"))
    errors = []
    edges = {}  # folder -> {included folder: first "file:line" seen}
    for folder in sorted(core_dirs):
        if level_of(folder) is None:
            errors.append(f"core/{folder}/: folder missing from the layer order of tools/check_layers.py "
                          "(add it there and to ARCHITECTURE.md)")
            continue
        for where, _, quoted, header in includes(root, os.path.join("core", folder)):
            if QT.match(header):
                errors.append(f"{where}: includes Qt ({header}); core/ never includes Qt")
                continue
            if not quoted or "/" not in header:
                continue
            target = header.split("/", 1)[0]
            if target == "ui" or target in APP:
                errors.append(f"{where}: includes {header}, above core/")
            elif target in core_dirs and target != folder and level_of(target) is not None:
                edges.setdefault(folder, {}).setdefault(target, where)
                if level_of(target) > level_of(folder):
                    errors.append(f"{where}: {folder}/ includes {header}, a layer above it")
    return errors + cycles("core", edges)


def check_ui(root):
    ui = os.path.join(root, "ui")
    if not os.path.isdir(ui):
        return []
    ui_dirs = subfolders(ui)
    errors = []
    edges = {}
    for folder in [""] + sorted(ui_dirs):
        for where, name, quoted, header in includes(root, os.path.join("ui", folder) if folder else "ui"):
            if not folder and os.path.dirname(where.split(":")[0]) != "ui":
                continue  # files of the folders are checked with their folder
            if not quoted or "/" not in header:
                continue
            first = header.split("/", 1)[0]
            if first in APP:
                errors.append(f"{where}: includes {header}; ui/ never includes app/")
                continue
            if first != "ui":
                continue
            if header == "ui/main_window.h":
                if folder and not re.match(r".*_feature\.(h|cpp)$", name):
                    errors.append(f"{where}: includes ui/main_window.h; only a feature's install() file "
                                  "(*_feature.cpp) may")
                continue
            target = header.split("/")[1]
            if target not in ui_dirs or target == folder or not folder:
                continue
            edges.setdefault(folder, {}).setdefault(target, where)
            if folder in UI_SHARED:
                if target not in UI_SHARED:
                    errors.append(f"{where}: ui/{folder}/ is shared and includes the feature {header}")
                elif UI_SHARED.index(target) > UI_SHARED.index(folder):
                    errors.append(f"{where}: ui/{folder}/ includes {header}, above it "
                                  f"(shared folders from the ground up: {', '.join(UI_SHARED)})")
    return errors + cycles("ui", edges)


def cycles(top, edges):
    """Include cycles among the folders of `top` (a level check reports most of them too)."""
    out, state, stack = [], {}, []

    def visit(folder):
        state[folder] = "open"
        stack.append(folder)
        for target in sorted(edges.get(folder, {})):
            if state.get(target) == "open":
                loop = stack[stack.index(target):] + [target]
                hops = ", ".join(edges[a][b] for a, b in zip(loop, loop[1:]))
                out.append(f"{top}/: include cycle {' -> '.join(loop)} ({hops})")
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
    if not os.path.isdir(os.path.join(root, "core")):
        print(f"check_layers: {os.path.join(root, 'core')}: no such folder")
        return 1
    errors = check_core(root) + check_ui(root)
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} include(s) against the layers "
              f"(core/ from the ground up: {order_text()}; ui/: {', '.join(UI_SHARED)}, features)")
        return 1
    print(f"check_layers: includes point down (core/: {order_text()}; ui/: {', '.join(UI_SHARED)}, features)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
