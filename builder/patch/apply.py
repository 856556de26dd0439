"""Applying a series with `git am --3way`, and the patch-ids that prove what was applied."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from .. import git
from ..errors import CommandError, PatchError, UserError
from .series import PatchFile, Series

Say = Callable[[str], None]

_FAILED_AT = re.compile(r"error: patch failed: (?P<file>\S+):(?P<line>\d+)")
_CONFLICT = re.compile(r"CONFLICT \([^)]*\): Merge conflict in (?P<file>\S+)")
_MISSING = re.compile(r"error: (?P<file>\S+): does not exist in index")
_NO_SHA1 = re.compile(r"sha1 information is lacking or useless \((?P<file>[^)]+)\)")


def describe_failure(output: str) -> str:
    files = []
    for m in _FAILED_AT.finditer(output):
        files.append(f"{m['file']} (hunk at line {m['line']})")
    for rx in (_CONFLICT, _MISSING, _NO_SHA1):
        files += [m["file"] for m in rx.finditer(output) if not any(f.startswith(m["file"]) for f in files)]
    return ", ".join(dict.fromkeys(files)) or "(git am gave no file name)"


def _state_file(wt: Path) -> Path:
    """Kept in the worktree's own git folder: a nested tree's state stays out of the tree around it."""
    return wt / git.out("rev-parse", "--git-path", "variant-patch-state.json", cwd=wt)


def _desired(base: str, series: tuple[Series, ...]) -> dict[str, object]:
    return {"base": base, "patches": [[s.name, p.path.name, p.sha256] for s in series for p in s.patches]}


def is_current(wt: Path, base: str, series: tuple[Series, ...]) -> bool:
    """True if the worktree is exactly base + these patches, with no local changes."""
    state = _state_file(wt)
    if not state.is_file():
        return False
    recorded = json.loads(state.read_text())
    if {k: recorded.get(k) for k in ("base", "patches")} != _desired(base, series):
        return False
    head = git.git("rev-parse", "HEAD", cwd=wt, check=False).stdout.strip()
    if head != recorded.get("head"):
        return False
    dirty = git.git(
        "status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all", cwd=wt
    ).stdout.strip()
    return not dirty


def am_in_progress(wt: Path) -> bool:
    """A `git am` (or rebase) that was interrupted left its state in the worktree's git folder."""
    for state in ("rebase-apply", "rebase-merge"):
        path = git.out("rev-parse", "--git-path", state, cwd=wt)
        if (wt / path).exists():
            return True
    return False


def recover(wt: Path, say: Say) -> None:
    """Finish off an interrupted `git am` (a killed build) so the next one can start."""
    if am_in_progress(wt):
        say(f"{wt}: an interrupted git am was left behind; aborting it")
        git.git("am", "--abort", cwd=wt, check=False, neutral=True)
        if am_in_progress(wt):  # --abort refuses some half-written states
            git.git("am", "--quit", cwd=wt, check=False, neutral=True)
        git.git("reset", "--quiet", "--hard", cwd=wt, check=False, neutral=True)


def apply(wt: Path, branch: str, base: str, series: tuple[Series, ...], say: Say) -> str:
    """Put the worktree at base + every patch, one commit each; return HEAD.

    The committer date is the author date and the committer is fixed, so the
    same base and patches always give the same commits. If a patch does not
    apply, the worktree goes back to where it was and PatchError names it.
    """
    if is_current(wt, base, series):
        return git.out("rev-parse", "HEAD", cwd=wt)
    recover(wt, say)
    dirty = git.git(
        "status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all", cwd=wt
    ).stdout.strip()
    if dirty:
        raise UserError(
            f"{wt} has local changes; the build worktree is managed by the tool. "
            "Use `variant patch edit` to hack on a series, or discard them with "
            f"`git -C {wt} reset --hard`"
        )
    before = git.out("rev-parse", "HEAD", cwd=wt)
    _state_file(wt).unlink(missing_ok=True)
    git.git("checkout", "--quiet", "-B", branch, base, cwd=wt, neutral=True)
    env = dict(git.TOOL_IDENTITY)
    for s in series:
        for p in s.patches:
            say(f"applying {s.name}/{p.path.name}")
            try:
                git.git(
                    "am", "--3way", "--quiet", "--committer-date-is-author-date", p.path,
                    cwd=wt, env=env, neutral=True,
                )  # fmt: skip
            except CommandError as exc:
                output = exc.tail
                git.git("am", "--abort", cwd=wt, check=False, neutral=True)
                git.git("checkout", "--quiet", "-B", branch, before, cwd=wt, check=False, neutral=True)
                git.git("reset", "--quiet", "--hard", before, cwd=wt, check=False, neutral=True)
                raise PatchError(
                    f"series {s.name}: patch {p.path.name} ({p.subject!r}) does not apply "
                    f"to {base[:12]}: {describe_failure(output)}\n"
                    + "\n".join("  | " + ln for ln in output.splitlines()[-12:])
                    + f"\nthe worktree {wt} was left as it was"
                ) from exc
    head = git.out("rev-parse", "HEAD", cwd=wt)
    _state_file(wt).write_text(json.dumps({**_desired(base, series), "head": head}, indent=1))
    return head


def applied_patch_ids(wt: Path, base: str) -> list[str]:
    """Stable patch-ids of the commits base..HEAD, oldest first."""
    revs = git.out("rev-list", "--reverse", f"{base}..HEAD", cwd=wt).split()
    return [_patch_id(git.out("show", "--format=", "--patch", r, cwd=wt), wt) for r in revs]


def file_patch_id(p: PatchFile, wt: Path) -> str:
    return _patch_id(p.path.read_text(errors="replace"), wt)


def _patch_id(diff: str, wt: Path) -> str:
    out = git.git("patch-id", "--stable", cwd=wt, input=diff).stdout.split()
    return out[0] if out else ""
