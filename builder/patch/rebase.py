"""`variant patch rebase SERIES --onto PIN`: the edit branch moved onto a newer base, three-way.

A patch that upstream already has is found two ways and dropped, with the
upstream commit named: before anything is applied, by its stable patch-id
among the commits old-base..new-base that touch the series' files (the patch
was merged as it is); and while applying, when `git am --3way` finds its
changes already there ("No changes -- Patch already applied": merged with a
different context or squashed into a larger commit). What remains is applied
with `git am --3way` in one go, so a conflict leaves the edit worktree in
`git am`'s own state: resolve, `git am --continue`, then `variant patch refresh`.
On success the patch files are refreshed at once.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import git
from ..errors import CommandError, PatchError, UserError
from ..layout import Layout
from ..source import mirror
from ..source import sources as sources_mod
from ..source.sources import Source
from . import apply, repo
from . import edit as edit_mod
from . import refresh as refresh_mod
from .apply import Say
from .refresh import Changes


@dataclass(frozen=True)
class Upstreamed:
    subject: str
    commit: str | None  # the upstream commit that carries it, when one can be named
    upstream_subject: str
    how: str


@dataclass(frozen=True)
class Result:
    old_base: str
    new_base: str
    upstreamed: tuple[Upstreamed, ...]
    kept: tuple[str, ...]
    changes: Changes


def resolve_onto(layout: Layout, src: Source, onto: str, *, offline: bool, say: Say) -> str:
    """PIN: a commit or ref in the source's mirror (fetched from its url if missing), or the name
    of another source in sources.toml, whose pinned commit is brought into this mirror."""
    here = layout.mirror(src.name)
    others = sources_mod.load_all(layout.sources_file)
    if onto in others and onto != src.name:
        other = others[onto]
        base = mirror.ensure_base(layout, other, offline=offline, say=say)
        if other.name != src.name:
            git.git("fetch", "--quiet", layout.mirror(other.name), base.commit, git_dir=here)
        return base.commit
    found = repo.resolve(here, onto)
    if found is None and not offline:
        say(f"{src.name}: fetching {onto} from {src.url}")
        fetched = git.git("fetch", "--quiet", "origin", onto, git_dir=here, check=False).returncode == 0
        found = repo.resolve(here, onto) or (repo.resolve(here, "FETCH_HEAD") if fetched else None)
        if found is None:  # servers that refuse unadvertised objects: all branches and tags
            git.git("fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                    git_dir=here, check=False)  # fmt: skip
            found = repo.resolve(here, onto)
    if found is None:
        raise UserError(
            f"--onto {onto}: no such commit in {here} (nor a source in {layout.sources_file}); "
            "fetch it first, or name a source"
        )
    return found


def _upstream_ids(wt: Path, old: str, new: str, files: list[str]) -> dict[str, str]:
    """Stable patch-id -> upstream commit, for the commits old..new that touch files."""
    if not files:
        return {}
    log = git.git("log", "--no-color", "-p", "--format=commit %H", f"{old}..{new}", "--", *files, cwd=wt)
    ids = git.git("patch-id", "--stable", cwd=wt, input=log.stdout).stdout
    out: dict[str, str] = {}
    for line in ids.splitlines():
        if line.strip():
            pid, sha = line.split()[:2]
            out[pid] = sha
    return out


def _skipped_by_am(output: str) -> list[str]:
    """Subjects `git am` reported as already applied."""
    skipped, current = [], ""
    for line in output.splitlines():
        if line.startswith("Applying: "):
            current = line.removeprefix("Applying: ").strip()
        elif "Patch already applied" in line and current:
            skipped.append(current)
    return skipped


def _naming(wt: Path, old: str, new: str, files: tuple[str, ...]) -> tuple[str | None, str]:
    """The newest upstream commit in old..new that touches files: who most likely merged it."""
    paths = list(files)
    res = git.git("log", "-1", "--format=%H %s", f"{old}..{new}", "--", *paths, cwd=wt, check=False)
    if not res.stdout.strip():
        return None, ""
    sha, _, subject = res.stdout.strip().partition(" ")
    return sha, subject


def rebase(layout: Layout, name: str, source: str, onto: str, *, offline: bool, say: Say) -> Result:
    ws = edit_mod.workspace(layout, name, source)
    if not (ws.worktree / ".git").exists():
        edit_mod.edit(layout, name, source, offline=offline, reset=False, say=say)
    wt, old = ws.worktree, ws.base()
    edit_mod.check_clean(wt, "a rebase")
    src = edit_mod.load_source(layout, source)
    new = resolve_onto(layout, src, onto, offline=offline, say=say)
    commits = repo.commits(wt, old)
    head = repo.resolve(wt, "HEAD") or old
    repo.set_ref(layout.mirror(source), f"refs/series/{source}/{name}/pre-rebase", head)
    ids = apply.applied_patch_ids(wt, old)
    upstream = _upstream_ids(wt, old, new, sorted({f for c in commits for f in c.files}))
    gone: list[Upstreamed] = []
    keep = []
    for c, pid in zip(commits, ids, strict=True):
        if pid in upstream:
            up = repo.commit(wt, upstream[pid])
            gone.append(Upstreamed(c.subject, up.sha, up.subject, "same patch-id"))
        else:
            keep.append(c)
    say(f"series {name}: rebasing {len(keep)} commit(s) from {old[:12]} onto {new[:12]}")
    with tempfile.TemporaryDirectory(prefix="variant-rebase-") as tmp:
        files = [
            p
            for i, c in enumerate(keep)
            for p in refresh_mod.format_patches(
                wt,
                c.parents[0],
                c.sha,
                Path(tmp) / f"{i:04d}",
                ("--no-numbered", "--start-number", str(i + 1)),
            )
        ]
        git.git("checkout", "--quiet", "-B", ws.branch, new, cwd=wt, neutral=True)
        ws.record(new, rebased_from=old)
        if files:
            try:
                res = git.git(
                    "am", "--3way", "--committer-date-is-author-date", *files, cwd=wt, env=git.TOOL_IDENTITY,
                    neutral=True,
                )  # fmt: skip
                output = res.stdout + res.stderr
            except CommandError as exc:
                raise _conflict(wt, name, exc, gone) from exc
    by_subject = {c.subject: c for c in keep}
    for subject in _skipped_by_am(output if files else ""):
        found = by_subject.get(subject)
        sha, up_subject = _naming(wt, old, new, found.files if found else ())
        gone.append(Upstreamed(subject, sha, up_subject, "its changes are already there (git am)"))
    kept = tuple(c.subject for c in keep if c.subject not in {g.subject for g in gone})
    changes = refresh_mod.refresh(layout, name, source, say)
    return Result(old, new, tuple(gone), kept, changes)


def _conflict(wt: Path, name: str, exc: CommandError, gone: list[Upstreamed]) -> PatchError:
    status = git.git("status", "--porcelain", cwd=wt, check=False).stdout
    unmerged = [ln[3:] for ln in status.splitlines() if ln[:2] in ("UU", "AA", "DU", "UD", "AU", "UA")]
    current = git.git("am", "--show-current-patch=raw", cwd=wt, check=False).stdout
    failing = re.search(r"(?m)^Subject: (?:\[PATCH[^\]]*\] )?(.*)$", current)
    files = ", ".join(unmerged) or apply.describe_failure(exc.tail)
    dropped = "".join(f"\n  upstreamed: {g.subject} ({g.commit or '?'})" for g in gone)
    return PatchError(
        f"series {name}: conflict in {files} while applying "
        f"{failing[1].strip() if failing else 'a patch'!r}{dropped}\n"
        f"the edit worktree {wt} is stopped in `git am`: fix the files, `git add` them, "
        f"`git -C {wt} am --continue`, then `variant patch refresh {name}` "
        f"(or `git -C {wt} am --abort` and `variant patch edit {name} --reset` to start over)"
    )
