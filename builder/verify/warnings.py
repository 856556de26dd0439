"""Compiler warnings per build step, kept across builds, with paths made worktree-relative.

The build log alone cannot answer "does a patched file compile warning-free":
a rerun compiles nothing and prints nothing, and a ccache hit replays the
diagnostics of whichever worktree compiled the file first. So each Ninja step
that runs replaces its entry in a ledger (`variant-warnings.json` in the build
folder); steps that did not run keep theirs. Ninja prints a step's output right
after its `[n/m] description` line, which is how lines are attributed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

LEDGER = "variant-warnings.json"
NINJA_STATUS = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")
# gcc and clang: "path/to/file.c:617:24: warning: ..." (ccache replays them on a hit)
WARNING = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:\d+:)? warning: (?P<text>.*)$")


class Collector:
    """Feed it the build's output lines; it knows which step printed which warning."""

    def __init__(self) -> None:
        self.steps: dict[str, list[list[str]]] = {}
        self._current: str | None = None

    def line(self, text: str) -> None:
        status = NINJA_STATUS.match(text)
        if status:
            self._current = status[3]
            self.steps.setdefault(self._current, [])
            return
        found = WARNING.match(text)
        if found and self._current is not None:
            self.steps[self._current].append([found["file"], found["line"], found["text"]])


def update(build_dir: Path, collected: Collector) -> dict[str, list[list[str]]]:
    """Merge the steps that ran into the ledger and return the whole ledger."""
    path = build_dir / LEDGER
    try:
        ledger: dict[str, list[list[str]]] = json.loads(path.read_text())
    except (OSError, ValueError):
        ledger = {}
    ledger.update(collected.steps)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ledger, indent=0, sort_keys=True))
    os.replace(tmp, path)
    return ledger


def tree_path(file: str, build_dir: Path, worktree: Path, work_root: Path) -> str | None:
    """A diagnostic's file as a path inside the worktree, or None if it is not in one.

    Relative paths are the compiler's (ccache's base_dir makes them relative to
    the build folder); an absolute path into another variant's worktree comes
    from a cache hit compiled there and names the same file of this tree.
    """
    path = Path(os.path.normpath(build_dir / file))
    if path.is_relative_to(worktree):
        return str(path.relative_to(worktree))
    if path.is_relative_to(work_root):
        parts = path.relative_to(work_root).parts  # (<variant>, "src", ...)
        if len(parts) > 2 and parts[1] == "src":
            return str(Path(*parts[2:]))
    return None


def at_lines(
    ledger: dict[str, list[list[str]]],
    build_dir: Path,
    worktree: Path,
    work_root: Path,
    lines: dict[str, set[int]],
) -> list[str]:
    """The warnings of the ledger that point into the given lines (worktree-relative paths), de-duplicated."""
    found = []
    for step_warnings in ledger.values():
        for file, line, text in step_warnings:
            rel = tree_path(file, build_dir, worktree, work_root)
            if rel is not None and int(line) in lines.get(rel, ()):
                found.append(f"{rel}:{line}: {text}")
    return sorted(set(found))
