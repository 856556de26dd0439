"""The sdist a wheel is built from: llama-cpp-python's, with the variant's tree as its vendor/llama.cpp.

The staged folder is kept between wheels of a variant and updated file by file:
a file whose bytes did not change keeps its mtime, so scikit-build-core's kept
build folder recompiles only what a new patch touched.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import git, tempdirs
from ..errors import UserError
from ..unpack import below_top, unpack
from .recipe import MANIFEST, VENDOR, Recipe

VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.M)
INIT = "llama_cpp/__init__.py"


def _vendor(worktree: Path, dest: Path) -> None:
    """The variant's committed tree (base + series) as dest: `git archive`, so nothing untracked."""
    with tempfile.TemporaryDirectory() as tmp:
        tar_file = Path(tmp) / "tree.tar"
        git.git("archive", "--format=tar", "-o", tar_file, "HEAD", cwd=worktree)
        unpack(tar_file, dest)


def _same(a: Path, b: Path) -> bool:
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    return b.is_file() and filecmp.cmp(a, b, shallow=False)


def _make_room(dst: Path, rel: Path) -> None:
    """Clear what stands where dst/rel must go: a folder in a file's place, a file in a folder's."""
    target = dst / rel
    for parent in reversed(rel.parents[:-1]):
        if (dst / parent).is_symlink() or (dst / parent).is_file():
            (dst / parent).unlink()
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.is_symlink() or target.exists():
        target.unlink()


def _sync(src: Path, dst: Path) -> int:
    """Make dst hold exactly src's files; unchanged files are not touched. Returns how many were written.

    A written file gets the time of writing, not the tree's: `git archive` dates every file at its
    commit, and a patch's commit is older than the objects of the last build, so a changed file
    that kept that date would look older than its object file and Ninja would not recompile it.
    """
    written = 0
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file() or p.is_symlink()}
    for rel in sorted(wanted):
        if _same(src / rel, dst / rel):
            continue
        _make_room(dst, rel)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if (src / rel).is_symlink():
            os.symlink(os.readlink(src / rel), dst / rel)
        else:
            shutil.copyfile(src / rel, dst / rel)
            shutil.copymode(src / rel, dst / rel)
        written += 1
    if dst.is_dir():
        for p in sorted(dst.rglob("*"), reverse=True):
            rel = p.relative_to(dst)
            if p.is_dir() and not p.is_symlink():
                if not any(p.iterdir()):
                    p.rmdir()
            elif rel not in wanted:
                p.unlink()
    return written


def _set_version(init: Path, version: str) -> None:
    text = init.read_text()
    if not VERSION_LINE.search(text):
        raise UserError(f'{init}: no `__version__ = "..."` line to give the wheel its version label')
    init.write_text(VERSION_LINE.sub(f'__version__ = "{version}"', text, count=1))


def _quiet(message: str) -> None:
    pass


def stage(
    recipe: Recipe,
    sdist: Path,
    worktree: Path,
    say: Callable[[str], None] = _quiet,
    *,
    shown: Path | None = None,
) -> int:
    """recipe.staged := the sdist, vendor tree replaced, version labelled, manifest added.

    shown: what errors call the sdist (the file `sdist`, a private copy, was made of).
    Returns how many files changed since the last wheel of this variant.
    """
    with tempdirs.folder(recipe.work, "stage", say) as tmp:
        fresh = tmp / "sdist"
        unpack(sdist, fresh, below_top, shown=shown)  # without its top folder (llama_cpp_python-0.3.36/)
        if not (fresh / VENDOR).is_dir():
            raise UserError(f"{sdist.name}: has no {VENDOR}/ to replace with the variant's tree")
        shutil.rmtree(fresh / VENDOR)
        # PKG-INFO makes the folder an unpacked sdist, whose metadata (the version) a backend may
        # take from it instead of from the labelled __init__.py.
        (fresh / "PKG-INFO").unlink(missing_ok=True)
        _vendor(worktree, fresh / VENDOR)
        _set_version(fresh / INIT, recipe.version)
        manifest: dict[str, Any] = recipe.manifest()
        (fresh / "llama_cpp" / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return _sync(fresh, recipe.staged)
