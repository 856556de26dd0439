"""Named sources (sources.toml): what each code base is, pinned, and how it is built and run.

A source is a git URL at a full commit, with an optional offline fallback: a
sha256-pinned PyPI sdist (`pypi`) or source archive (`archive`, found in the
mirror folders). Forks add what their builds need: another source nested in
the tree (BitNet's llama.cpp), dependencies built and installed first (T-MAC),
a compiler floor, generated code (`prebuild`), files and environment the
binaries need at run time, and the symbols that prove their kernels are in.
Fetching lives in mirror.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError

KEYS = (
    "url", "commit", "tag", "submodules", "cmake-dir", "prebuild", "pypi", "archive", "subdir", "sha256",
    "cmake", "nested", "depends", "role", "patches", "export", "compiler", "runtime", "verify", "kernels",
    "description", "smoke", "kv-padding",
)  # fmt: skip
ROLES = ("tree", "dependency")  # a dependency is built and installed for others, never a variant's source
Say = Callable[[str], None]
REQUIREMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])? ?== ?[A-Za-z0-9][A-Za-z0-9.+!_-]*")
PLACEHOLDER = re.compile(r"\{(prefix|share|python|dep:[A-Za-z0-9._-]+)\}")


@dataclass(frozen=True)
class Pin:
    """An offline fallback: a file pinned by sha256 that holds the tree under <top>/<subdir>."""

    kind: str  # "pypi" (fetched with pip) or "archive" (found in a mirror folder)
    name: str  # the requirement ("llama-cpp-python==0.3.36") or the file name ("T-MAC-6494329.tar.gz")
    subdir: str
    sha256: str

    def describe(self) -> str:
        return f"{self.name} sha256:{self.sha256}"


@dataclass(frozen=True)
class CompilerFloor:
    families: tuple[str, ...]  # empty: any
    min_version: tuple[int, ...]  # empty: any
    why: str


@dataclass(frozen=True)
class Source:
    name: str
    file: Path
    url: str
    commit: str
    tag: str | None
    description: str
    role: str
    submodules: bool
    cmake_dir: str
    prebuild: tuple[tuple[str, ...], ...]  # argv lists run in the tree before configuring
    offline: Pin | None
    cmake: tuple[tuple[str, str], ...]  # recipe defaults for this code base, already rendered
    nested: tuple[tuple[str, str], ...] = ()  # (path in this tree, source placed there)
    depends: tuple[str, ...] = ()  # dependency sources installed first
    patches: tuple[str, ...] = ()  # series applied when this source is built as a dependency
    export: tuple[tuple[str, str], ...] = ()  # dependency: -D options it gives dependents ({prefix})
    compiler: CompilerFloor | None = None
    runtime_files: tuple[str, ...] = ()  # copied to dist/<variant>/share/ ({dep:NAME} paths)
    runtime_env: tuple[tuple[str, str], ...] = ()  # set for the binaries ({share})
    verify: tuple[tuple[str, tuple[str, ...]], ...] = ()  # option (or "*") -> symbols that must be defined
    kernels: tuple[tuple[str, tuple[str, ...]], ...] = ()  # option (or "*") -> functions where time goes
    generate: tuple[str, ...] = ()  # how this code base's programs decode greedily ({model} {prompt} {n})
    models: str = ""  # the model recipe (models/forkmodels.py) whose formats this source's kernels run
    # The KV cells a generated token's attention reads are rounded up to this (llama.cpp pads to 256 since
    # 2025; older trees to 32 without flash attention): models/traffic.py counts the bytes they read.
    kv_padding: int = 256

    @property
    def pypi(self) -> Pin | None:
        return self.offline if self.offline is not None and self.offline.kind == "pypi" else None

    def identity(self) -> dict[str, Any]:
        """What decides the tree and how it builds: part of every hash built from it."""
        pin = self.offline
        return {
            "name": self.name,
            "url": self.url,
            "commit": self.commit,
            "submodules": self.submodules,
            "cmake_dir": self.cmake_dir,
            "prebuild": [list(s) for s in self.prebuild],
            "offline": None
            if pin is None
            else {"kind": pin.kind, "name": pin.name, "subdir": pin.subdir, "sha256": pin.sha256},
            **({"nested": dict(self.nested)} if self.nested else {}),
            **({"depends": list(self.depends)} if self.depends else {}),
            **(
                {"patches": list(self.patches), "export": dict(self.export)}
                if self.role == "dependency"
                else {}
            ),
        }


@dataclass(frozen=True)
class Base:
    """The commit a worktree starts from, and where it came from."""

    commit: str  # a commit in the local mirror
    origin: str  # "git", "pypi" or "archive"
    detail: str  # the URL, or the pinned file and its sha256


def load_all(path: Path) -> dict[str, Source]:
    data = tf.load(path)
    sources = {}
    for name, entry in data.items():
        # A source's name reaches paths, branches and the CI matrix's job names.
        tf.check_name(path, name, name, "source")
        if not isinstance(entry, dict):
            raise SpecError(path, name, "expected a table ([name] with url and commit)")
        sources[name] = _parse(path, name, entry)
    for src in sources.values():
        _check_references(path, src, sources)
    return sources


def _check_references(path: Path, src: Source, sources: dict[str, Source]) -> None:
    p = f"{src.name}."
    for where, other in src.nested:
        if other not in sources:
            raise SpecError(
                path, f"{p}nested.{where}", f'unknown source "{other}"' + tf.suggest(other, sources)
            )
        if sources[other].role != "tree":
            raise SpecError(path, f"{p}nested.{where}", f'"{other}" is a dependency, not a tree to nest')
    for i, dep in enumerate(src.depends):
        if dep not in sources:
            raise SpecError(path, f"{p}depends[{i}]", f'unknown source "{dep}"' + tf.suggest(dep, sources))
        if sources[dep].role != "dependency":
            raise SpecError(path, f"{p}depends[{i}]", f'"{dep}" has no role = "dependency"')


def _offline(path: Path, entry: dict[str, Any], p: str) -> Pin | None:
    requirement = tf.get_str(path, entry, "pypi", p)
    archive = tf.get_str(path, entry, "archive", p)
    if requirement is not None and archive is not None:
        raise SpecError(path, p + "archive", "give one offline fallback: pypi or archive, not both")
    if requirement is None and archive is None:
        for key in ("subdir", "sha256"):
            if key in entry:
                raise SpecError(path, p + key, "only meaningful together with pypi or archive")
        return None
    # Nothing but a name and a version: the pin becomes a line of a pip requirements file.
    if requirement is not None and not REQUIREMENT.fullmatch(requirement):
        raise SpecError(path, p + "pypi", f'expected an exact pin like "name==1.2.3", got "{requirement}"')
    if archive is not None and ("/" in archive or not archive.endswith((".tar.gz", ".tgz", ".tar", ".zip"))):
        raise SpecError(
            path, p + "archive", f'expected a file name like "tree-1234567.tar.gz", got "{archive}"'
        )
    sha = tf.get_str(path, entry, "sha256", p)
    if not sha or not tf.is_full_sha(sha, 64):
        raise SpecError(path, p + "sha256", "required with pypi or archive: the file's 64-hex sha256")
    kind, name = ("pypi", requirement) if requirement is not None else ("archive", archive)
    assert name is not None
    return Pin(kind, name, tf.get_str(path, entry, "subdir", p) or ".", sha)


def _str_table(path: Path, entry: dict[str, Any], key: str, p: str) -> tuple[tuple[str, str], ...]:
    table = tf.get_table(path, entry, key, p)
    for k, v in table.items():
        if not isinstance(v, str):
            raise SpecError(path, f"{p}{key}.{k}", "expected a string")
        for m in re.finditer(r"\{([^}]*)\}", v):
            if not PLACEHOLDER.fullmatch(m[0]):
                raise SpecError(path, f"{p}{key}.{k}", f"unknown placeholder {m[0]} (expected {{prefix}}, "
                                "{share}, {python} or {dep:NAME})")  # fmt: skip
    return tuple(sorted(table.items()))


def _lists_table(
    path: Path, entry: dict[str, Any], key: str, p: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    table = tf.get_table(path, entry, key, p)
    return tuple(sorted((k, tf.get_str_list(path, table, k, f"{p}{key}.") or ()) for k in table))


def _compiler(path: Path, entry: dict[str, Any], p: str) -> CompilerFloor | None:
    table = tf.get_table(path, entry, "compiler", p)
    if not table:
        return None
    q = f"{p}compiler."
    tf.check_keys(path, table, ("family", "min-version", "why"), q)
    families = tf.get_str_list(path, table, "family", q) or ()
    for i, fam in enumerate(families):
        if fam not in ("gcc", "clang"):
            raise SpecError(path, f"{q}family[{i}]", f'invalid value "{fam}" (expected one of: clang, gcc)')
    raw = tf.get_str(path, table, "min-version", q)
    if raw is not None and not re.fullmatch(r"\d+(\.\d+)*", raw):
        raise SpecError(path, q + "min-version", f'expected a version like "18", got "{raw}"')
    version = tuple(int(x) for x in raw.split(".")) if raw else ()
    return CompilerFloor(families, version, tf.get_str(path, table, "why", q) or "")


def _parse(path: Path, name: str, entry: dict[str, Any]) -> Source:
    p = f"{name}."
    tf.check_keys(path, entry, KEYS, p)
    url = tf.get_str(path, entry, "url", p)
    commit = tf.get_str(path, entry, "commit", p)
    if not url:
        raise SpecError(path, p + "url", "required")
    if not commit:
        raise SpecError(path, p + "commit", "required: the full 40-hex commit to build")
    offline = _offline(path, entry, p)
    # An sdist's changelog names the commit it vendors by 9 hex digits (history.toml): pinned to
    # that sdist by sha256, the abbreviation is what is known, and the tree is the sdist's.
    short = offline is not None and re.fullmatch(r"[0-9a-f]{7,39}", commit) is not None
    if not tf.is_full_sha(commit) and not short:
        raise SpecError(
            path, p + "commit", f'expected a full 40-character lowercase hex commit, got "{commit}"'
        )
    cmake = tf.render_cmake_table(path, tf.get_table(path, entry, "cmake", p), p + "cmake.")
    role = tf.get_enum(path, entry, "role", ROLES, p) or "tree"
    runtime = tf.get_table(path, entry, "runtime", p)
    tf.check_keys(path, runtime, ("files", "env"), f"{p}runtime.")
    for var in tf.get_table(path, runtime, "env", f"{p}runtime."):
        if not tf.ENV_NAME.fullmatch(var):  # the programs are given it: Popen refuses "A=B"
            raise SpecError(path, f"{p}runtime.env.{var}", "expected a variable name (letters, digits and _)")
    for key in ("patches", "export"):
        if key in entry and role != "dependency":
            raise SpecError(
                path, p + key, 'only for a role = "dependency" source (a variant names its own patches)'
            )
    kv_padding = entry.get("kv-padding", 256)
    if not isinstance(kv_padding, int) or isinstance(kv_padding, bool) or kv_padding < 1:
        raise SpecError(path, p + "kv-padding", f"expected a positive number of cells, got {kv_padding!r}")
    return Source(
        name=name,
        file=path,
        url=url,
        commit=commit,
        tag=tf.get_str(path, entry, "tag", p),
        description=tf.get_str(path, entry, "description", p) or "",
        role=role,
        submodules=bool(tf.get_bool(path, entry, "submodules", p)),
        cmake_dir=tf.get_str(path, entry, "cmake-dir", p) or ".",
        prebuild=tf.get_argv_list(path, entry, "prebuild", p),
        offline=offline,
        cmake=tuple(sorted(cmake.items())),
        nested=_str_table(path, entry, "nested", p),
        depends=tf.get_str_list(path, entry, "depends", p) or (),
        patches=tf.get_str_list(path, entry, "patches", p) or (),
        export=_str_table(path, entry, "export", p),
        compiler=_compiler(path, entry, p),
        runtime_files=tf.get_str_list(path, runtime, "files", f"{p}runtime.") or (),
        runtime_env=_str_table(path, runtime, "env", f"{p}runtime."),
        verify=_lists_table(path, entry, "verify", p),
        kernels=_lists_table(path, entry, "kernels", p),
        kv_padding=kv_padding,
        **_smoke(path, entry, p),
    )


def _smoke(path: Path, entry: dict[str, Any], p: str) -> dict[str, Any]:
    table = tf.get_table(path, entry, "smoke", p)
    q = f"{p}smoke."
    tf.check_keys(path, table, ("generate", "models"), q)
    generate = tf.get_str_list(path, table, "generate", q) or ()
    if generate and not {"{model}", "{prompt}", "{n}"} <= set(generate):
        raise SpecError(path, q + "generate", "an argv with the placeholders {model}, {prompt} and {n}")
    return {"generate": generate, "models": tf.get_str(path, table, "models", q) or ""}
