"""`variant patch edit`: a worktree where a series is a branch of commits, to hack on with plain git.

The worktree lives in the state folder (.variant/series/<source>/<series>/edit/src)
on the branch series/<source>/<series>, made from the source's pinned commit
with the series applied by `git am` (apply.apply: one commit per patch,
authorship kept). edit.json beside it records the base the branch grows from;
refresh and rebase read it. An existing worktree is never reset unless asked:
it holds the person's work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import git
from ..errors import UserError
from ..layout import Layout
from ..source import mirror
from ..source import sources as sources_mod
from ..source.sources import Source
from ..tomlfile import suggest
from . import apply, repo
from . import series as series_mod
from .apply import Say
from .series import Series


@dataclass(frozen=True)
class Workspace:
    """Where one series (for one source) is edited."""

    name: str
    source: str
    root: Path  # .variant/series/<source>/<name>

    @property
    def worktree(self) -> Path:
        return self.root / "edit" / "src"

    @property
    def branch(self) -> str:
        return f"series/{self.source}/{self.name}"

    @property
    def state_file(self) -> Path:
        return self.root / "edit.json"

    def base(self) -> str:
        """The commit the edit branch grows from (recorded by edit and rebase)."""
        if not self.state_file.is_file() or not (self.worktree / ".git").exists():
            raise UserError(
                f"series {self.name} has no edit worktree for {self.source}; "
                f"run `variant patch edit {self.name}` first"
            )
        base = json.loads(self.state_file.read_text()).get("base")
        if not isinstance(base, str):
            raise UserError(
                f"{self.state_file}: no base recorded; run `variant patch edit {self.name} --reset`"
            )
        return base

    def record(self, base: str, **extra: object) -> None:
        data = {"series": self.name, "source": self.source, "base": base, **extra}
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(self.state_file)


@dataclass(frozen=True)
class EditInfo:
    workspace: Workspace
    base: str
    head: str
    created: bool
    commits: int


def workspace(layout: Layout, name: str, source: str) -> Workspace:
    return Workspace(name, source, layout.series_work(name, source))


def load_series(layout: Layout, name: str, source: str) -> Series:
    sdir = layout.patches_dir / name
    if not (sdir / "series.toml").is_file():
        raise UserError(
            f'unknown patch series "{name}"' + suggest(name, series_mod.available(layout.patches_dir))
        )
    return series_mod.load(layout.patches_dir, name, source, referenced_from=sdir / "series.toml", key="")


def load_source(layout: Layout, name: str) -> Source:
    sources = sources_mod.load_all(layout.sources_file)
    if name not in sources:
        raise UserError(f'unknown source "{name}"' + suggest(name, sources) + f" (in {layout.sources_file})")
    return sources[name]


def check_idle(wt: Path) -> None:
    """Refuse to read a branch while git is half-way through am or rebase in it."""
    doing = repo.in_progress(wt)
    if doing:
        raise UserError(
            f"{wt}: a `git {doing}` stopped half-way (a conflict?). Resolve it there and run "
            f"`git -C {wt} {doing} --continue` (or `--abort`), then try again"
        )


def check_clean(wt: Path, before: str) -> None:
    """Idle (check_idle) and without uncommitted changes: what a rebase of the branch needs."""
    check_idle(wt)
    if repo.dirty(wt):
        raise UserError(f"{wt} has uncommitted changes: commit or discard them before {before}")


def edit(layout: Layout, name: str, source: str, *, offline: bool, reset: bool, say: Say) -> EditInfo:
    """Make (or find) the series' edit worktree: base + one commit per patch."""
    series = load_series(layout, name, source)
    src = load_source(layout, source)
    ws = workspace(layout, name, source)
    if (ws.worktree / ".git").exists() and ws.state_file.is_file() and not reset:
        base = ws.base()
        head = repo.resolve(ws.worktree, "HEAD") or base
        n = len(repo.commits(ws.worktree, base, head)) if repo.in_progress(ws.worktree) is None else 0
        return EditInfo(ws, base, head, False, n)
    pinned = mirror.ensure_base(layout, src, offline=offline, say=say)
    mirror.ensure_worktree(layout, src, ws.worktree, ws.branch, pinned, say)
    if reset:
        old = repo.resolve(ws.worktree, "HEAD")
        say(f"resetting {ws.branch} to the series' files (it was at {old[:12] if old else '?'})")
        if repo.in_progress(ws.worktree):
            git.git("am", "--abort", cwd=ws.worktree, check=False, neutral=True)
            git.git("rebase", "--abort", cwd=ws.worktree, check=False, neutral=True)
        git.git("reset", "--quiet", "--hard", cwd=ws.worktree, neutral=True)
    head = apply.apply(ws.worktree, ws.branch, pinned.commit, (series,), say)
    ws.record(pinned.commit)
    return EditInfo(ws, pinned.commit, head, True, len(series.patches))
