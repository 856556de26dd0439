"""Compiler definitions (toolchains/*.toml), discovery on PATH and version checks."""

from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import tomlfile as tf
from ..errors import SpecError, UserError
from ..host.tools import parse_version
from ..run import capture

FAMILIES = ("gcc", "clang")
KEYS = ("description", "family", "cc", "cxx", "min-version", "install")


@dataclass(frozen=True)
class ToolchainSpec:
    name: str
    file: Path
    description: str
    family: str
    cc: tuple[str, ...]  # candidates, first found on PATH wins
    cxx: tuple[str, ...]
    min_version: tuple[int, ...] | None
    install: str  # how to get it, shown by errors and `variant doctor`


@dataclass(frozen=True)
class Compiler:
    path: str
    version_line: str  # first line of `--version`, e.g. "Debian clang version 19.1.7 (3~deb12u1)"
    version: tuple[int, ...]

    @property
    def comment_marker(self) -> str:
        """The text this compiler leaves in the ELF .comment section of what it compiles.

        gcc writes "GCC: (Debian 12.2.0-14) 12.2.0", its --version line with the
        program name replaced; clang writes its --version line as it is.
        """
        if " clang version " in f" {self.version_line}":
            return self.version_line
        return "GCC: " + self.version_line.split(" ", 1)[1]


@dataclass(frozen=True)
class Toolchain:
    spec: ToolchainSpec
    cc: Compiler
    cxx: Compiler

    def identity(self) -> dict[str, str]:
        return {
            "name": self.spec.name,
            "cc": self.cc.path,
            "cc_version": self.cc.version_line,
            "cxx": self.cxx.path,
            "cxx_version": self.cxx.version_line,
        }


def available(layout_dir: Path) -> list[str]:
    return sorted(p.stem for p in layout_dir.glob("*.toml"))


def load(toolchains_dir: Path, name: str, *, referenced_from: Path, key: str) -> ToolchainSpec:
    path = toolchains_dir / f"{name}.toml"
    if not path.is_file():
        raise SpecError(
            referenced_from,
            key,
            f'unknown toolchain "{name}"' + tf.suggest(name, available(toolchains_dir)),
        )
    data = tf.load(path)
    tf.check_keys(path, data, KEYS)
    family = tf.get_enum(path, data, "family", FAMILIES)
    cc = tf.get_str_list(path, data, "cc")
    cxx = tf.get_str_list(path, data, "cxx")
    for key_name, value in (("family", family), ("cc", cc), ("cxx", cxx)):
        if not value:
            raise SpecError(path, key_name, "required")
    min_version = tf.get_str(path, data, "min-version")
    parsed_min = None
    if min_version is not None and re.fullmatch(r"\d+(\.\d+)*", min_version):
        parsed_min = tuple(int(x) for x in min_version.split("."))
    if min_version is not None and parsed_min is None:
        raise SpecError(path, "min-version", f'expected a version like "18" or "18.1", got "{min_version}"')
    assert family and cc and cxx
    return ToolchainSpec(
        name=name,
        file=path,
        description=tf.get_str(path, data, "description") or "",
        family=family,
        cc=cc,
        cxx=cxx,
        min_version=parsed_min,
        install=tf.get_str(path, data, "install") or "",
    )


@functools.cache
def probe(program: str) -> Compiler | None:
    """Find a compiler on PATH and ask it who it is (cached: hashing every variant asks often)."""
    found = shutil.which(program)
    if not found:
        return None
    out = capture([found, "--version"], check=False)
    line = (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else ""
    # Not realpath: clang++ is a symlink to clang, and clang picks C or C++ by the
    # name it was called with (linking C++ through "clang" misses libstdc++).
    return Compiler(path=str(Path(found).absolute()), version_line=line, version=parse_version(line))


def _first(candidates: tuple[str, ...]) -> Compiler | None:
    for program in candidates:
        found = probe(program)
        if found is not None:
            return found
    return None


class ToolchainMissing(UserError):
    """A valid spec whose compiler this machine lacks (or has too old): a status, not a spec error.

    `variant list` and `show` report it ("needs clang-19") and go on; only a build refuses.
    """

    def __init__(self, spec: ToolchainSpec, message: str, status: str) -> None:
        self.spec = spec
        self.status = status
        super().__init__(message)


def resolve(spec: ToolchainSpec) -> Toolchain:
    """Find the toolchain's compilers; a missing or too old one raises ToolchainMissing."""
    cc, cxx = _first(spec.cc), _first(spec.cxx)
    hint = f"; install with: {spec.install}" if spec.install else ""
    for role, comp, cands in (("C", cc, spec.cc), ("C++", cxx, spec.cxx)):
        if comp is None:
            raise ToolchainMissing(
                spec,
                f"toolchain {spec.name}: no {role} compiler found (tried {', '.join(cands)})"
                f"{hint} (see `variant doctor`)",
                f"needs {cands[0]}",
            )
        if spec.min_version and comp.version < spec.min_version:
            want = ".".join(map(str, spec.min_version))
            have = ".".join(map(str, comp.version))
            raise ToolchainMissing(
                spec,
                f"toolchain {spec.name}: {comp.path} is version {have}, at least {want} is required{hint}",
                f"needs {spec.family} >= {want} (found {have})",
            )
    assert cc is not None and cxx is not None
    return Toolchain(spec=spec, cc=cc, cxx=cxx)
