"""Checks on the tree the binaries were compiled from: the patch commits, and warning-free patched files."""

from __future__ import annotations

from pathlib import Path

from .. import git
from ..patch import apply as patches
from . import warnings
from .plan import Plan
from .verify import Check


def patch_commits(plan: Plan, base: str, head: str) -> Check:
    """The branch holds one commit per patch file, in order (stable patch-ids), and nothing else."""
    wt = plan.worktree
    branch = git.out("rev-parse", "--abbrev-ref", "HEAD", cwd=wt)
    if branch != plan.branch:
        return Check("patches", False, f"worktree is on {branch}, expected {plan.branch}")
    now = git.out("rev-parse", "HEAD", cwd=wt)
    if now != head:
        return Check("patches", False, f"{plan.branch} moved during the build ({head[:12]} -> {now[:12]})")
    dirty = git.git("status", "--porcelain", "--untracked-files=no", cwd=wt).stdout.strip()
    if dirty:
        first = dirty.splitlines()[0]
        return Check("patches", False, f"the worktree has changes that are in no commit: {first}")
    want = [patches.file_patch_id(p, wt) for s in plan.series for p in s.patches]
    have = patches.applied_patch_ids(wt, base)
    if want != have:
        return Check(
            "patches",
            False,
            f"expected {len(want)} patch commits on {plan.branch}, found {len(have)} that differ",
        )
    return Check("patches", True, f"{len(want)} patch commit(s) on {plan.branch}, worktree clean")


def patched_files(plan: Plan, base: str) -> set[str]:
    return set(git.out("diff", "--name-only", f"{base}..HEAD", cwd=plan.worktree).split())


def warnings_in_patches(plan: Plan, base: str, ledger: dict[str, list[list[str]]], work_root: Path) -> Check:
    """Patches are meant for upstream review: the files they touch compile warning-free.

    Read from the warnings ledger, which keeps each step's warnings until that
    step runs again: a rerun that compiles nothing still fails.
    """
    if not plan.series:
        return Check("warnings", True, "no patches")
    files = patched_files(plan, base)
    found = warnings.in_files(ledger, plan.build_dir, plan.worktree, work_root, files)
    if found:
        return Check("warnings", False, f"{len(found)} warning(s) in patched files, e.g. {found[0]}")
    return Check("warnings", True, f"no compiler warnings in the {len(files)} patched file(s)")
