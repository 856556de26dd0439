"""Bringing a pinned source into its local bare mirror (git, else the offline fallback) and worktrees."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import git, tempdirs
from ..digest import sha256_file
from ..errors import CommandError, UserError
from ..layout import Layout
from ..lock import hold
from . import offline as pinned
from .sources import Base, Say, Source

# --- fetching ----------------------------------------------------------------


def _fetch_git(layout: Layout, src: Source, say: Say) -> str | None:
    """Bring src.commit into the mirror from src.url; None if the remote cannot be reached."""
    mirror = layout.mirror(src.name)
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        git.git("init", "--bare", "--quiet", mirror)
        git.git("remote", "add", "origin", src.url, git_dir=mirror)
    else:
        git.git("remote", "set-url", "origin", src.url, git_dir=mirror)
    say(f"{src.name}: fetching {src.commit[:12]} from {src.url}")
    # Asking for the one commit is cheapest; servers that refuse unadvertised
    # objects get a full fetch of branches and tags instead.
    first = git.git("fetch", "--quiet", "origin", src.commit, git_dir=mirror, check=False)
    if first.returncode != 0:
        full = git.git(
            "fetch",
            "--quiet",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
            git_dir=mirror,
            check=False,
        )
        if full.returncode != 0:
            reason = (full.stderr or first.stderr).strip().splitlines()
            say(f"{src.name}: {src.url} unreachable ({reason[-1] if reason else 'git fetch failed'})")
            return None
    if not git.has_commit(mirror, src.commit):
        raise UserError(
            f"{src.file}: {src.name}.commit: {src.commit} is not in {src.url} (after a full fetch)"
        )
    return src.commit


def expected_origin(layout: Layout, src: Source, *, offline: bool) -> str:
    """The origin ensure_base() will use, decided without the network: part of a variant's hash.

    The sdist's tree is not the git commit's tree (an sdist may leave files out),
    so a binary built from one is not "up to date" for the other.
    """
    mirror = layout.mirror(src.name)
    if not offline and git.has_commit(mirror, src.commit):
        return "git"
    pin = src.offline
    if pin is not None and pinned.imported_commit(mirror, pin) is not None:
        return pin.kind
    return pin.kind if offline and pin is not None else "git"


def ensure_base(layout: Layout, src: Source, *, offline: bool, say: Say, fetch: bool = False) -> Base:
    """Make the pinned source available in the local mirror, from git or from PyPI.

    A mirror that already holds the pinned source is used as it is: the git
    commit first, else an earlier import of the sdist (the same choice as
    expected_origin). Otherwise git is fetched, and when the URL cannot be
    reached (or with --offline) the pinned sdist is imported instead, once.
    fetch=True (`variant fetch`) asks git even when an import is there.
    """
    mirror = layout.mirror(src.name)
    with hold(layout.lock(f"source-{src.name}"), f"the {src.name} mirror", say=say):
        if not offline and git.has_commit(mirror, src.commit):
            return Base(src.commit, "git", src.url)
        pin = src.offline
        imported = pinned.imported_commit(mirror, pin) if pin is not None else None
        if not offline and (fetch or imported is None) and _fetch_git(layout, src, say):
            return Base(src.commit, "git", src.url)
        if pin is None:
            why = "--offline was given" if offline else f"cannot reach {src.url}"
            raise UserError(
                f"{src.file}: {src.name}: {why} and it has no offline fallback (pypi or archive, with sha256)"
            )
        commit = imported
        if commit is None:
            say(f"{src.name}: importing the offline source {pin.name}")
            commit = pinned.import_tree(layout, src, say)
        say(f"{src.name}: origin {pin.kind} ({pin.describe()}) -> {commit[:12]}")
        return Base(commit, pin.kind, pin.describe())


# --- worktrees ---------------------------------------------------------------


def ensure_worktree(layout: Layout, src: Source, wt: Path, branch: str, base: Base, say: Say) -> bool:
    """Create a worktree of src's mirror at wt, on branch, at base, if missing; True if it was created.

    A worktree of another mirror (the variant's source changed) or a folder
    left without its .git is replaced.
    """
    mirror = layout.mirror(src.name)
    if (wt / ".git").exists():
        common = git.git("rev-parse", "--git-common-dir", cwd=wt, check=False).stdout.strip()
        if common and (wt / common).resolve() == mirror.resolve():
            return False
        say(f"{wt}: the worktree belongs to another source; replacing it")
    if wt.exists():
        shutil.rmtree(wt)
    with hold(layout.lock(f"source-{src.name}"), f"the {src.name} mirror", say=say):
        git.git("worktree", "prune", git_dir=mirror)
        wt.parent.mkdir(parents=True, exist_ok=True)
        say(f"{src.name}: creating worktree {wt} ({branch})")
        try:
            git.git(
                "worktree",
                "add",
                "--quiet",
                "--force",
                "-B",
                branch,
                wt,
                base.commit,
                git_dir=mirror,
            )
        except CommandError as exc:
            raise UserError(f"{src.name}: cannot create worktree {wt}:\n{exc.tail}") from exc
    return True


def update_submodules(wt: Path) -> None:
    git.git("submodule", "update", "--init", "--recursive", "--quiet", cwd=wt)


@dataclass(frozen=True)
class Written:
    path: Path
    sha256: str
    matches: bool  # the pin's sha256: False when another git or gzip made different bytes


def create_mirror(layout: Layout, sources: list[Source], folder: Path, say: Say) -> list[Written]:
    """Each source's pinned file in folder: archives made from git, sdists copied from the cache or pip."""
    out = []
    for src in sources:
        pin = src.offline
        if pin is None:
            say(f"{src.name}: no offline fallback pinned; skipped")
            continue
        if pin.kind == "pypi":
            # copied beside, hashed as it is copied, and renamed: a killed copy never leaves a
            # partial sdist under its name
            with tempdirs.folder(folder, "archive", say) as tmp:
                got = pinned.fetch(layout, src, say, tmp / "pinned")
                dest = folder / got.path.name
                if got.origin.resolve() != dest.resolve():
                    os.replace(got.path, dest)
        else:
            base = ensure_base(layout, src, offline=False, say=say, fetch=True)
            if base.origin != "git":
                need = f"its git commit is needed to write {pin.name}"
                raise UserError(f"{src.name}: {need}, and {src.url} is not reachable")
            dest = pinned.write_archive(layout, src, base.commit, folder, say)
        sha = sha256_file(dest)
        say(f"{src.name}: wrote {dest}")
        out.append(Written(dest, sha, sha == pin.sha256))
    return out
