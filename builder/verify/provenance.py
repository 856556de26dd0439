"""Checks on the trees the binaries were compiled from: the patch commits, and warning-free patched lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import git
from ..patch import apply as patches
from ..plan.plan import Plan
from ..plan.trees import Tree
from ..source.sources import Base
from . import warnings
from .verify import Check

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)


@dataclass(frozen=True)
class Checkout:
    """A tree as the build found it: its worktree, the base it started from, the head after its series."""

    tree: Tree
    worktree: Path
    base: Base
    head: str

    def record(self, branch: str) -> dict[str, str]:
        return {
            "origin": self.base.origin,
            "origin_detail": self.base.detail,
            "base_commit": self.base.commit,
            "head_commit": self.head,
            "branch": branch,
        }


def patch_commits(plan: Plan, c: Checkout) -> Check:
    """The branch holds one commit per patch file, in order (stable patch-ids), and nothing else."""
    wt, name = c.worktree, "patches" if c.tree.path == "." else f"patches ({c.tree.path})"
    branch = git.out("rev-parse", "--abbrev-ref", "HEAD", cwd=wt)
    if branch != plan.branch:
        return Check(name, False, f"worktree is on {branch}, expected {plan.branch}")
    now = git.out("rev-parse", "HEAD", cwd=wt)
    if now != c.head:
        return Check(name, False, f"{plan.branch} moved during the build ({c.head[:12]} -> {now[:12]})")
    dirty = git.git("status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all", cwd=wt).stdout
    if dirty.strip():
        first = dirty.strip().splitlines()[0]
        return Check(name, False, f"the worktree has changes that are in no commit: {first}")
    want = [patches.file_patch_id(p, wt) for s in c.tree.series for p in s.patches]
    have = patches.applied_patch_ids(wt, c.base.commit)
    if want != have:
        return Check(
            name, False, f"expected {len(want)} patch commits on {plan.branch}, found {len(have)} that differ"
        )
    return Check(
        name, True, f"{len(want)} patch commit(s) on {plan.branch} of {c.tree.source.name}, worktree clean"
    )


def changed_lines(c: Checkout) -> dict[str, set[int]]:
    """Lines the tree's patches add or change, per file (paths inside the variant's worktree)."""
    diff = git.out("diff", "-U0", "--no-color", "--no-ext-diff", f"{c.base.commit}..HEAD", cwd=c.worktree)
    prefix = "" if c.tree.path == "." else c.tree.path.rstrip("/") + "/"
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            current = (
                None if target == "/dev/null" else out.setdefault(prefix + target.removeprefix("b/"), set())
            )
        elif (m := HUNK.match(line)) and current is not None:
            start, count = int(m[1]), int(m[2]) if m[2] is not None else 1
            current.update(range(start, start + count))
    return out


def warnings_in_patches(
    plan: Plan, checkouts: list[Checkout], ledger: dict[str, list[list[str]]], work_root: Path
) -> Check:
    """Patches are meant for upstream review: no compiler warning points into a line they add or change.

    Read from the warnings ledger, which keeps each step's warnings until that
    step runs again: a rerun that compiles nothing still fails. A fork's own
    warnings elsewhere in a patched file are the fork's, not the patch's.
    """
    if not plan.series:
        return Check("warnings", True, "no patches")
    lines: dict[str, set[int]] = {}
    for c in checkouts:
        lines.update(changed_lines(c))
    found = warnings.at_lines(ledger, plan.build_dir, plan.worktree, work_root, lines)
    if found:
        return Check(
            "warnings", False, f"{len(found)} warning(s) in lines the patches change, e.g. {found[0]}"
        )
    return Check(
        "warnings", True, f"no compiler warnings in the lines the patches change ({len(lines)} file(s))"
    )
