"""What a reviewer checks on each commit of a series, before any build: whitespace, clang-format on
the lines the commit adds, a subject in llama.cpp's `module : title` form, and a body that says why.

llama.cpp's CONTRIBUTING.md asks for squashed titles of the form
`<module> : <commit title>` (e.g. `utils : fix typo in utils.py`); a patch
series that uses it from the start needs no retitling at merge time. Module
lists are comma-separated (`llama, common : ...`).

clang-format runs through `git clang-format` between the commit and its
parent with the tree's own .clang-format. It reformats whole statements and
alignment blocks around a changed line, which can reach lines upstream wrote
(llama.cpp itself is not clang-format clean); only the formatting hunks that
touch lines the commit adds count against it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import git
from ..errors import UserError
from .repo import CommitInfo

SUBJECT = re.compile(r"^(?P<module>[\w.+/-]+(?:, ?[\w.+/-]+)*) : (?P<title>\S.*)$")
CLANG_FORMAT = "clang-format-19"
GIT_CLANG_FORMAT = "git-clang-format-19"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Finding:
    check: str  # whitespace, clang-format, subject, body
    ok: bool
    detail: str


def whitespace(wt: Path, parent: str, sha: str) -> Finding:
    res = git.git("diff", "--check", parent, sha, cwd=wt, check=False)
    if res.returncode == 0:
        return Finding("whitespace", True, "clean")
    problems = [ln for ln in res.stdout.splitlines() if re.match(r"^\S+:\d+: ", ln)]
    return Finding("whitespace", False, "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))


def subject(c: CommitInfo) -> Finding:
    if SUBJECT.match(c.subject):
        return Finding("subject", True, c.subject)
    hint = re.sub(r"^([\w.+/-]+(?:, ?[\w.+/-]+)*)\s*:\s*", r"\1 : ", c.subject)
    want = f' (e.g. "{hint}")' if hint != c.subject else ' (e.g. "ggml-cpu : fix the barrier")'
    return Finding("subject", False, f"{c.subject!r} is not in llama.cpp's `module : title` form{want}")


def body(c: CommitInfo) -> Finding:
    words = len(c.prose.split())
    if words:
        return Finding("body", True, f"{words} words")
    return Finding("body", False, "the message has no body: say what the change does and why")


def added_lines(wt: Path, parent: str, sha: str) -> dict[str, set[int]]:
    """File -> line numbers (in sha's version) that the commit adds or changes."""
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    diff = git.git("diff", "-U0", "--no-color", "--no-ext-diff", parent, sha, cwd=wt).stdout
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None if name == "/dev/null" else out.setdefault(name.removeprefix("b/"), set())
        elif (m := _HUNK.match(line)) and current is not None:
            start, count = int(m[3]), int(m[4] if m[4] is not None else 1)
            current.update(range(start, start + count))
    return out


def split_hunks(diff: str, added: dict[str, set[int]]) -> tuple[str, int]:
    """A clang-format diff (old side = the commit's file) split by whose lines it rewrites.

    Returns the hunks that rewrite only lines the commit adds (as a diff that
    `git apply` takes) and the number of hunks that would also rewrite lines
    upstream wrote, which are not held against the commit.
    """
    files: list[tuple[list[str], list[list[str]]]] = []  # (file header, hunks)
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            files.append(([line], []))
        elif not files:
            continue
        elif _HUNK.match(line):
            files[-1][1].append([line])
        elif files[-1][1]:
            files[-1][1][-1].append(line)
        else:
            files[-1][0].append(line)
    out: list[str] = []
    mixed = 0
    for header, hunks in files:
        mine = added.get(header[0].split(" b/", 1)[-1], set())
        kept = []
        for h in hunks:
            touched = _rewritten(h)
            if touched <= mine:
                kept.append(h)
            elif touched & mine:
                mixed += 1
        if kept:
            out += header + [ln for h in kept for ln in h]
    return "\n".join(out) + ("\n" if out else ""), mixed


def _rewritten(hunk: list[str]) -> set[int]:
    """Old-side line numbers a hunk removes or rewrites; a pure insertion, the lines around it."""
    m = _HUNK.match(hunk[0])
    assert m is not None
    old_no = int(m[1])
    if m[2] == "0":
        return {old_no, old_no + 1}
    touched = set()
    for line in hunk[1:]:
        if line.startswith("-"):
            touched.add(old_no)
            old_no += 1
        elif not line.startswith("+"):
            old_no += 1
    return touched


def format_fixes(wt: Path, parent: str, sha: str) -> tuple[str, int]:
    """clang-format's changes to the lines sha adds, as a diff against sha's tree ('' when clean),
    and how many more hunks would also rewrite upstream's lines (see split_hunks)."""
    if shutil.which(GIT_CLANG_FORMAT) is None or shutil.which(CLANG_FORMAT) is None:
        raise UserError(f"{CLANG_FORMAT} is not installed: apt-get install -y clang-format-19")
    res = git.git(
        GIT_CLANG_FORMAT.removeprefix("git-"),
        "--binary",
        shutil.which(CLANG_FORMAT) or CLANG_FORMAT,
        "--diff",
        "--style",
        "file",
        parent,
        sha,
        cwd=wt,
        check=False,
    )
    if "diff --git" not in res.stdout:
        if res.returncode not in (0, 1):
            raise UserError(f"git clang-format failed in {wt}:\n{res.stderr.strip()}")
        return "", 0
    return split_hunks(res.stdout, added_lines(wt, parent, sha))


def clang_format(wt: Path, parent: str, sha: str) -> Finding:
    if not (wt / ".clang-format").is_file():
        return Finding("clang-format", True, "skipped: the tree has no .clang-format")
    fixes, mixed = format_fixes(wt, parent, sha)
    note = f" ({mixed} more would also reformat upstream's lines: not counted)" if mixed else ""
    if not fixes:
        return Finding("clang-format", True, "clean" + note)
    files = sorted({ln.split(" b/", 1)[-1] for ln in fixes.splitlines() if ln.startswith("diff --git ")})
    hunks = sum(1 for ln in fixes.splitlines() if ln.startswith("@@ "))
    return Finding(
        "clang-format", False, f"{hunks} hunk(s) of added lines to reformat in {', '.join(files)}{note}"
    )


def lint(wt: Path, c: CommitInfo) -> list[Finding]:
    """Every static check of one commit; wt must have c checked out (clang-format reads its config)."""
    parent = c.parents[0]
    return [whitespace(wt, parent, c.sha), clang_format(wt, parent, c.sha), subject(c), body(c)]
