"""Named upstreams (sources.toml): what each source is, pinned; fetching lives in mirror.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError

KEYS = ("url", "commit", "tag", "submodules", "cmake-dir", "prebuild", "pypi", "subdir", "sha256", "cmake")
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
    cmake = tf.render_cmake_table(path, tf.get_table(path, entry, "cmake", p), p + "cmake.")
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
