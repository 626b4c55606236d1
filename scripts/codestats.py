"""Print the size of the runtime code: lines per package, the longest modules and functions.

Lines count what a reader reads: every line but blank ones (docstrings and comments
included). Run from the repository root: ``python3 scripts/codestats.py``.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ["httpkit", "store", "dbcache", "api", "cache", "lb", "web", "mastodon", "stack"]
SCRIPTS = ["load_test.py"]


def lines(path: Path) -> int:
    """Count the non-blank lines of a file."""
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def functions(path: Path) -> list[tuple[int, str]]:
    """Return (length, name) of every function and method in a module."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            found.append((length, f"{path}:{node.lineno} {node.name}"))
    return found


def main(root: Path, most: int = 10) -> None:
    modules: list[tuple[int, str]] = []
    funcs: list[tuple[int, str]] = []
    total = 0
    print("| package | modules | lines |\n| --- | ---: | ---: |")
    for name in PACKAGES + SCRIPTS:
        paths = sorted((root / name).rglob("*.py")) if (root / name).is_dir() else [root / name]
        count = sum(lines(path) for path in paths)
        total += count
        print(f"| {name} | {len(paths)} | {count:,} |")
        for path in paths:
            modules.append((lines(path), str(path.relative_to(root))))
            funcs.extend(functions(path.relative_to(root)))
    print(f"| all | {len(modules)} | {total:,} |\n")
    print("Longest modules:", ", ".join(f"{n} {m}" for m, n in sorted(modules)[::-1][:most]))
    print("\nLongest functions:")
    for length, name in sorted(funcs)[::-1][:most]:
        print(f"  {length:4d}  {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
