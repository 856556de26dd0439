"""Named upstreams (sources.toml): bare mirrors, the PyPI sdist fallback, worktrees."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import git
from . import tomlfile as tf
from .errors import CommandError, SpecError, UserError
from .layout import Layout
from .lock import hold

KEYS = ("url", "commit", "tag", "submodules", "cmake-dir", "prebuild", "pypi", "subdir", "sha256", "cmake")
CMAKE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*$")
Say = Callable[[str], None]


@dataclass(frozen=True)
class PypiPin:
    requirement: str  # "llama-cpp-python==0.3.36"
    subdir: str  # folder of the sdist that holds the tree
    sha256: str  # of the sdist file: the pin


@dataclass(frozen=True)
class Source:
    name: str
    file: Path
    url: str
    commit: str
    tag: str | None
    submodules: bool
    cmake_dir: str
    prebuild: tuple[tuple[str, ...], ...]
    pypi: PypiPin | None
    cmake: tuple[tuple[str, str], ...]  # recipe defaults for this code base, already rendered

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "commit": self.commit,
            "submodules": self.submodules,
            "cmake_dir": self.cmake_dir,
            "prebuild": [list(s) for s in self.prebuild],
            "pypi": None
            if self.pypi is None
            else {
                "requirement": self.pypi.requirement,
                "subdir": self.pypi.subdir,
                "sha256": self.pypi.sha256,
            },
        }


@dataclass(frozen=True)
class Base:
    """The commit a variant's worktree starts from, and where it came from."""

    commit: str  # a commit in the local mirror
    origin: str  # "git" or "pypi"
    detail: str  # the URL, or the sdist requirement and sha256


def render_cmake_value(path: Path, key: str, value: object) -> str:
    """TOML value to a -D value: booleans become ON/OFF, integers their digits."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, int | str):
        return str(value)
    raise SpecError(path, key, f"expected a boolean, integer or string, got {type(value).__name__}")


def render_cmake_table(path: Path, table: dict[str, Any], prefix: str) -> dict[str, str]:
    rendered = {}
    for name, value in table.items():
        if not CMAKE_NAME.match(name):
            raise SpecError(path, prefix + name, "not a valid CMake variable name")
        rendered[name] = render_cmake_value(path, prefix + name, value)
    return rendered


def load_all(path: Path) -> dict[str, Source]:
    data = tf.load(path)
    sources = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise SpecError(path, name, "expected a table ([name] with url and commit)")
        sources[name] = _parse(path, name, entry)
    return sources


def _parse(path: Path, name: str, entry: dict[str, Any]) -> Source:
    p = f"{name}."
    tf.check_keys(path, entry, KEYS, p)
    url = tf.get_str(path, entry, "url", p)
    commit = tf.get_str(path, entry, "commit", p)
    if not url:
        raise SpecError(path, p + "url", "required")
    if not commit:
        raise SpecError(path, p + "commit", "required: the full 40-hex commit to build")
    if not tf.is_full_sha(commit):
        raise SpecError(
            path, p + "commit", f'expected a full 40-character lowercase hex commit, got "{commit}"'
        )
    pypi = None
    requirement = tf.get_str(path, entry, "pypi", p)
    if requirement is not None:
        if "==" not in requirement:
            raise SpecError(
                path, p + "pypi", f'expected an exact pin like "name==1.2.3", got "{requirement}"'
            )
        sha = tf.get_str(path, entry, "sha256", p)
        if not sha or not tf.is_full_sha(sha, 64):
            raise SpecError(path, p + "sha256", "required with pypi: the sdist's 64-hex sha256")
        pypi = PypiPin(requirement, tf.get_str(path, entry, "subdir", p) or ".", sha)
    else:
        for key in ("subdir", "sha256"):
            if key in entry:
                raise SpecError(path, p + key, "only meaningful together with pypi")
    cmake = render_cmake_table(path, tf.get_table(path, entry, "cmake", p), p + "cmake.")
    return Source(
        name=name,
        file=path,
        url=url,
        commit=commit,
        tag=tf.get_str(path, entry, "tag", p),
        submodules=bool(tf.get_bool(path, entry, "submodules", p)),
        cmake_dir=tf.get_str(path, entry, "cmake-dir", p) or ".",
        prebuild=tf.get_argv_list(path, entry, "prebuild", p),
        pypi=pypi,
        cmake=tuple(sorted(cmake.items())),
    )


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


def ensure_base(layout: Layout, src: Source, *, offline: bool, say: Say) -> Base:
    """Make the pinned source available in the local mirror, from git or from PyPI.

    Online, git wins: the mirror is used if it already has the commit, else it
    is fetched. When the URL cannot be reached (or with --offline) the pinned
    sdist is imported instead, once; later builds reuse the imported commit.
    """
    from . import sdist  # late: sdist builds on this module's types

    mirror = layout.mirror(src.name)
    with hold(layout.lock(f"source-{src.name}"), f"the {src.name} mirror", say=say):
        if not offline and (git.has_commit(mirror, src.commit) or _fetch_git(layout, src, say)):
            return Base(src.commit, "git", src.url)
        if src.pypi is None:
            why = "--offline was given" if offline else f"cannot reach {src.url}"
            raise UserError(
                f"{src.name}: {why} and sources.toml gives no offline fallback (pypi, subdir, sha256) for it"
            )
        detail = f"{src.pypi.requirement} sha256:{src.pypi.sha256}"
        commit = sdist.imported_commit(mirror, src.pypi)
        if commit is None:
            say(f"{src.name}: importing the offline source {src.pypi.requirement}")
            commit = sdist.import_tree(layout, src, say)
        say(f"{src.name}: origin pypi ({detail}) -> {commit[:12]}")
        return Base(commit, "pypi", detail)


# --- worktrees ---------------------------------------------------------------


def ensure_worktree(layout: Layout, src: Source, variant: str, base: Base, say: Say) -> bool:
    """Create the variant's worktree at base if missing; True if it was created.

    A worktree of another mirror (the variant's source changed) or a folder
    left without its .git is replaced.
    """
    wt = layout.worktree(variant)
    mirror = layout.mirror(src.name)
    if (wt / ".git").exists():
        common = git.git("rev-parse", "--git-common-dir", cwd=wt, check=False).stdout.strip()
        if common and (wt / common).resolve() == mirror.resolve():
            return False
        say(f"{variant}: its worktree belongs to another source; replacing it")
    if wt.exists():
        shutil.rmtree(wt)
    with hold(layout.lock(f"source-{src.name}"), f"the {src.name} mirror", say=say):
        git.git("worktree", "prune", git_dir=mirror)
        wt.parent.mkdir(parents=True, exist_ok=True)
        say(f"{variant}: creating worktree {wt}")
        try:
            git.git(
                "worktree",
                "add",
                "--quiet",
                "--force",
                "-B",
                f"variant/{variant}",
                wt,
                base.commit,
                git_dir=mirror,
            )
        except CommandError as exc:
            raise UserError(f"{variant}: cannot create worktree {wt}:\n{exc.tail}") from exc
    return True


def update_submodules(wt: Path) -> None:
    git.git("submodule", "update", "--init", "--recursive", "--quiet", cwd=wt)
