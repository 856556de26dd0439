"""`variant patch refresh`: the edit branch's commits written back as the series' patch files.

The files are `git format-patch` output with every option that could churn
fixed: no commit id in the "From " line (--zero-commit), no git version
signature, "[PATCH]" without numbers (adding a patch renames no subject), full
blob ids (abbreviations grow with the repository), myers diff with rename
detection, 64-character file names, and no user or system git config. The
author date is the commit's own. So refreshing a branch nobody touched leaves
every file byte-identical, and the sha256 pins with them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import git
from ..errors import UserError
from ..layout import Layout
from ..run import Arg
from . import edit as edit_mod
from . import repo
from . import series as series_mod
from .apply import Say

FORMAT_PATCH: tuple[str, ...] = (
    "format-patch",
    "--zero-commit",
    "--no-signature",
    "--no-thread",
    "--no-attach",
    "--full-index",
    "--find-renames",
    "--diff-algorithm=myers",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--encode-email-headers",
    "--filename-max-length=64",
)

# No ~/.gitconfig, /etc/gitconfig or `git -c` from the environment: diff.noprefix,
# diff.algorithm, format.signature and friends would otherwise change the bytes.
NEUTRAL_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_COUNT": "0"}


def format_patches(
    wt: Path,
    base: str,
    head: str,
    out_dir: Path,
    extra: Sequence[Arg] = ("--no-numbered",),
    ident: dict[str, str] | None = None,
) -> list[Path]:
    """`git format-patch` of base..head into out_dir with the stable options; the files written.

    ident (GIT_COMMITTER_NAME/EMAIL) is who signs a cover letter; the patches keep their authors.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**NEUTRAL_ENV, "COLUMNS": "80", **(ident or {})}
    res = git.git(*FORMAT_PATCH, *extra, "-o", out_dir, f"{base}..{head}", cwd=wt, env=env)
    return [Path(line) for line in res.stdout.splitlines() if line.strip()]


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def render(wt: Path, base: str, head: str) -> dict[str, bytes]:
    """What the patch files of base..head would be: file name -> bytes."""
    with tempfile.TemporaryDirectory(prefix="variant-refresh-") as tmp:
        files = format_patches(wt, base, head, Path(tmp))
        return {f.name: f.read_bytes() for f in files}


def diff_files(folder: Path, wanted: dict[str, bytes]) -> Changes:
    have = {p.name: p.read_bytes() for p in sorted(folder.glob("*.patch"))}
    ch = Changes()
    for name, data in wanted.items():
        if name not in have:
            ch.added.append(name)
        elif have[name] != data:
            ch.changed.append(name)
        else:
            ch.unchanged.append(name)
    ch.removed = [n for n in have if n not in wanted]
    return ch


def write_files(folder: Path, wanted: dict[str, bytes], ch: Changes) -> None:
    """Each new file is written beside its target and renamed over it; stale ones go last."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ch.added + ch.changed:
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(wanted[name])
        tmp.replace(folder / name)
    for name in ch.removed:
        (folder / name).unlink()


def pending(layout: Layout, name: str, source: str) -> Changes:
    """What refresh would change, without writing anything."""
    ws = edit_mod.workspace(layout, name, source)
    base = ws.base()
    edit_mod.check_idle(ws.worktree)
    folder = series_mod.patch_folder(layout.patches_dir / name, source)
    return diff_files(folder, render(ws.worktree, base, "HEAD"))


def refresh(layout: Layout, name: str, source: str, say: Say) -> Changes:
    """Write the edit branch's commits back to patches/<name>/ and re-pin them."""
    ws = edit_mod.workspace(layout, name, source)
    base = ws.base()
    edit_mod.check_idle(ws.worktree)
    if repo.dirty(ws.worktree):
        raise UserError(
            f"{ws.worktree} has uncommitted changes: commit them (`git commit --amend` or "
            "`git commit --fixup` + `git rebase -i --autosquash`) before refreshing"
        )
    commits = repo.commits(ws.worktree, base)  # refuses merges and branches not on base
    sdir = layout.patches_dir / name
    folder = series_mod.patch_folder(sdir, source)
    wanted = render(ws.worktree, base, "HEAD")
    ch = diff_files(folder, wanted)
    if ch.any:
        if not folder.is_dir():
            say(f"series {name}: a new port for {source} in {folder}/ (the top-level files are another's)")
        write_files(folder, wanted, ch)
    series_mod.pin(sdir)
    if not commits:
        say(f"series {name}: the branch has no commits on {base[:12]}; the series is now empty")
    return ch
