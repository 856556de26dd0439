"""`variant patch export`: the series as a package to send upstream (the patch part; PR.md with the
numbers is written by pr/prdoc.py, which reads the results database).

DIR gets numbered `git format-patch` files with a cover letter ("[PATCH vN 0/M]"
from v2 on, with `base-commit:` and, from v2 on, the range-diff against the
previous revision), and a branch in the source's mirror pointing at the
series' commits, ready to push. Each export records a revision (revisions.py).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import git
from ..errors import UserError
from ..layout import Layout
from ..source import offline as offline_mod
from . import edit as edit_mod
from . import refresh as refresh_mod
from . import repo, revisions
from .apply import Say
from .check import SUBJECT
from .revisions import Revision
from .series import Series

MARKER = ".variant-export.json"


@dataclass(frozen=True)
class Package:
    series: Series
    source: str
    out: Path
    revision: Revision
    new_revision: bool
    previous: Revision | None
    branch: str
    base: str
    head: str
    files: tuple[Path, ...]  # cover letter first
    mirror: Path
    upstream_base: str  # the upstream commit whose tree `base` is (base itself when it came from git)
    subjects: tuple[str, ...]  # the patches' subjects, in order
    paths: tuple[str, ...]  # the files the series changes, as paths in the source tree

    @property
    def title(self) -> str:
        return pr_title(self.series.description, self.subjects)

    def as_dict(self) -> dict[str, Any]:
        return {
            "series": self.series.name,
            "source": self.source,
            "revision": self.revision.label,
            "new_revision": self.new_revision,
            "branch": self.branch,
            "base": self.base,
            "upstream_base": self.upstream_base,
            "title": self.title,
            "head": self.head,
            "files": [f.name for f in self.files],
            "push": f"git -C {self.mirror} push <your-fork-url> {self.branch}",
        }


def pr_title(description: str, subjects: tuple[str, ...]) -> str:
    """The pull request's title, in llama.cpp's `<module> : <title>` form like every patch subject.

    One patch: its subject, which is what the squash-merge will be titled. Several: the series'
    description when it has that form (check.SUBJECT, the patch check's own rule), else the first
    patch's subject. Either way it is words the series' authors wrote, never a title made up here.
    """
    if len(subjects) > 1 and SUBJECT.match(description):
        return description
    return subjects[0]


def upstream_of(layout: Layout, source: str, base: str) -> str:
    """The upstream commit a base stands for: an offline import of the source's pin is that pin's tree.

    Offline, the base is the deterministic commit that imported the sdist or archive, which no
    reviewer has; the tree is the pinned upstream commit's, and that is the commit to name.
    """
    src = edit_mod.load_source(layout, source)
    if src.offline is not None and offline_mod.imported_commit(layout.mirror(source), src.offline) == base:
        return src.commit
    return base


def _clear(out: Path) -> None:
    """DIR may be empty, missing, or an earlier export (which is replaced); nothing else is touched."""
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise UserError(f"{out} is not empty and not an earlier export; give an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def cover_text(series: Series, branch: str, rev: Revision, previous: Revision | None) -> tuple[str, str]:
    subject = series.description or series.name
    parts = [series.notes.strip()] if series.notes.strip() else []
    if series.upstream:
        parts.append(f"Answers: {series.upstream}")
    parts.append(f"Branch: {branch} ({rev.label} of the series)")
    if previous is not None:
        parts.append(f"Changes since {previous.label}: see the range-diff below.")
    return subject, "\n\n".join(parts)


def fill_cover(path: Path, subject: str, blurb: str, base: str, upstream: str) -> None:
    """format-patch's cover letter with subject and blurb, and base-commit naming the upstream commit."""
    text = path.read_text()
    text = text.replace("*** SUBJECT HERE ***", subject, 1).replace("*** BLURB HERE ***", blurb, 1)
    if upstream != base:  # offline, base is the local import of upstream's tree: name upstream's commit
        text = text.replace(f"base-commit: {base}", f"base-commit: {upstream}")
    path.write_text(text)


def export(
    layout: Layout, name: str, source: str, out: Path, *, branch: str | None, offline: bool, say: Say
) -> Package:
    series = edit_mod.load_series(layout, name, source)
    branch = branch or name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) or ".." in branch or branch.endswith(".lock"):
        raise UserError(f'--branch "{branch}": not a usable git branch name')
    ws = edit_mod.workspace(layout, name, source)
    editing = ws.state_file.is_file() and (ws.worktree / ".git").exists()
    if editing and repo.in_progress(ws.worktree) is None and refresh_mod.pending(layout, name, source).any:
        say(
            f"warning: {ws.worktree} has commits not refreshed into patches/{name}; "
            "the export uses the files (run `variant patch refresh` first to send the branch)"
        )
    base = revisions.current_base(layout, name, source, offline=offline, say=say)
    now = revisions.current(layout, name, source, base)
    head = revisions.materialize(layout, name, source, now, say)  # fails before anything is recorded
    rev, new = revisions.record(layout, name, source, branch, now)
    repo.set_ref(layout.mirror(source), revisions.ref_name(source, name, rev.label), head)
    prior = [r for r in revisions.recorded(layout, name, source) if r.number < rev.number]
    previous = prior[-1] if prior else None
    say(f"series {name}: {'recorded' if new else 'unchanged since'} {rev.label}")
    extra: list[str] = ["--numbered", "--cover-letter", f"--base={rev.base}"]
    if rev.number > 1:
        extra.append(f"--reroll-count={rev.number}")
    if previous is not None:
        prev_head = revisions.materialize(layout, name, source, previous, say)
        extra += [f"--range-diff={previous.base}..{prev_head}", revisions.CREATION_FACTOR]
    _clear(out)
    wt = layout.series_work(name, source) / "scratch" / "src"
    commits = repo.commits(wt, rev.base, head)
    name_, _, email = commits[0].author.rpartition(" <")
    ident = {"GIT_COMMITTER_NAME": name_, "GIT_COMMITTER_EMAIL": email.rstrip(">")}
    files = refresh_mod.format_patches(wt, rev.base, head, out, extra, ident)
    subject, blurb = cover_text(series, branch, rev, previous)
    upstream = upstream_of(layout, source, rev.base)
    fill_cover(files[0], subject, blurb, rev.base, upstream)
    mirror = layout.mirror(source)
    repo.set_ref(mirror, f"refs/heads/{branch}", head)
    # what the series changes, base to head at once: a file one patch adds and the next removes is not in it
    changed = git.git("diff", "--name-only", "-z", "--no-renames", rev.base, head, cwd=wt).stdout
    paths = tuple(p for p in changed.split("\0") if p)
    pkg = Package(
        series, source, out, rev, new, previous, branch, rev.base, head, tuple(files), mirror, upstream,
        tuple(c.subject for c in commits), paths,
    )  # fmt: skip
    (out / MARKER).write_text(json.dumps(pkg.as_dict(), indent=1) + "\n")
    return pkg
