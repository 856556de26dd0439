"""Numbered revisions of a series (v1, v2, ...), as b4 and git-series keep them, and range-diff.

Each `variant patch export` records the series as it was sent: its patch
files and base, in the catalogue (patches/<series>/revisions/<source>/vN/),
so the history travels with the repository and any machine can compare
revisions. To compare, a revision is applied onto its base in a scratch
worktree and its commits are kept under refs/series/<source>/<series>/vN in
the source's mirror; `git range-diff` does the rest.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import git
from .. import tomlfile as tf
from ..clock import now_iso
from ..errors import UserError
from ..layout import Layout
from ..source import mirror
from ..source.sources import Base
from . import apply, repo
from . import edit as edit_mod
from . import series as series_mod
from .apply import Say
from .series import Series

CURRENT = "current"


@dataclass(frozen=True)
class Revision:
    number: int  # 0: the series' files as they are now (not a recorded revision)
    dir: Path
    base: str
    files: tuple[Path, ...]

    @property
    def label(self) -> str:
        return f"v{self.number}" if self.number else CURRENT

    def fingerprint(self) -> tuple[str, tuple[str, ...]]:
        return self.base, tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in self.files)


def folder(layout: Layout, name: str, source: str) -> Path:
    return layout.patches_dir / name / "revisions" / source


def recorded(layout: Layout, name: str, source: str) -> list[Revision]:
    out = []
    root = folder(layout, name, source)
    for d in sorted(root.glob("v*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else 0):
        meta = d / "revision.toml"
        if not d.name[1:].isdigit() or not meta.is_file():
            continue
        base = tf.get_str(meta, tf.load(meta), "base") or ""
        if not tf.is_full_sha(base):
            raise UserError(f"{meta}: base: expected a full 40-hex commit, got {base!r}")
        out.append(Revision(int(d.name[1:]), d, base, tuple(sorted(d.glob("*.patch")))))
    return out


def current_base(layout: Layout, name: str, source: str, *, offline: bool, say: Say) -> str:
    """The base the series' files are written against: the edit worktree's (refresh writes them
    from there, a rebase moves it), else the source's pinned commit (its sdist import offline)."""
    ws = edit_mod.workspace(layout, name, source)
    if ws.state_file.is_file() and (ws.worktree / ".git").exists():
        return ws.base()
    src = edit_mod.load_source(layout, source)
    return mirror.ensure_base(layout, src, offline=offline, say=say).commit


def current(layout: Layout, name: str, source: str, base: str) -> Revision:
    sdir = layout.patches_dir / name
    files = tuple(series_mod.patch_files(sdir, source))
    # where the files are: a fork served by the top-level files reads them there
    return Revision(0, files[0].parent if files else series_mod.patch_folder(sdir, source), base, files)


def find(layout: Layout, name: str, source: str, label: str, *, offline: bool, say: Say) -> Revision:
    if label == CURRENT:
        return current(layout, name, source, current_base(layout, name, source, offline=offline, say=say))
    revs = {r.label: r for r in recorded(layout, name, source)}
    if label not in revs:
        known = ", ".join(revs) or "none yet (each `variant patch export` records one)"
        raise UserError(f"series {name}: no revision {label} for {source} (recorded: {known})")
    return revs[label]


def record(layout: Layout, name: str, source: str, branch: str, now: Revision) -> tuple[Revision, bool]:
    """`now` (the current files) as a revision: the latest one if nothing changed since, else vN+1."""
    if not now.files:
        raise UserError(f"series {name} has no patch files for {source}")
    revs = recorded(layout, name, source)
    if revs and revs[-1].fingerprint() == now.fingerprint():
        return revs[-1], False
    n = revs[-1].number + 1 if revs else 1
    d = folder(layout, name, source) / f"v{n}"
    tmp = d.with_name(f".v{n}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in now.files:
        shutil.copyfile(f, tmp / f.name)
    (tmp / "revision.toml").write_text(
        f'# written by `variant patch export`\nbase = "{now.base}"\nsource = "{source}"\n'
        f'branch = "{branch}"\nrecorded = "{now_iso()}"\n'
    )
    tmp.rename(d)
    return Revision(n, d, now.base, tuple(sorted(d.glob("*.patch")))), True


def materialize(layout: Layout, name: str, source: str, rev: Revision, say: Say) -> str:
    """Apply rev onto its base in the series' scratch worktree; its head, also kept as a ref."""
    if not rev.files:
        raise UserError(f"series {name} {rev.label}: no patch files in {rev.dir}")
    src = edit_mod.load_source(layout, source)
    mirror_dir = layout.mirror(source)
    if not git.has_commit(mirror_dir, rev.base):
        raise UserError(
            f"series {name} {rev.label}: its base {rev.base[:12]} is not in {mirror_dir}; "
            f"`variant fetch {source}` (or the rebase that made it) brings it"
        )
    wt = layout.series_work(name, source) / "scratch" / "src"
    mirror.ensure_worktree(
        layout, src, wt, f"scratch/{source}/{name}", Base(rev.base, "revision", rev.label), say
    )
    as_series = Series(
        name=f"{name}@{rev.label}",
        dir=rev.dir,
        file=rev.dir / "revision.toml",
        description="",
        upstream=None,
        status="local",
        applies_to=(),
        bench=(),
        requires=(),
        verify_strings=(),
        notes="",
        pins={},
        patches=tuple(series_mod.read_patch(f) for f in rev.files),
        source=source,
    )
    head = apply.apply(wt, f"scratch/{source}/{name}", rev.base, (as_series,), lambda _m: None)
    repo.set_ref(mirror_dir, ref_name(source, name, rev.label), head)
    return head


def ref_name(source: str, name: str, label: str) -> str:
    return f"refs/series/{source}/{name}/{label}"


# git's default (60) calls a patch rewritten in review a dropped one and an added one, which shows
# nothing of what changed; a revision rewrites patches in place far more often than it swaps them
# for unrelated ones of the same size, so pair whenever that is cheaper than drop plus add.
CREATION_FACTOR = "--creation-factor=100"


def range_diff(layout: Layout, name: str, source: str, old: Revision, new: Revision, say: Say) -> str:
    """`git range-diff` of two revisions: = unchanged, ! changed, < dropped, > added."""
    a = materialize(layout, name, source, old, say)
    b = materialize(layout, name, source, new, say)
    return git.git(
        "range-diff",
        "--no-color",
        CREATION_FACTOR,
        f"{old.base}..{a}",
        f"{new.base}..{b}",
        git_dir=layout.mirror(source),
    ).stdout
