"""Variant specs (variants/*.toml): load, validate, resolve `extends` into a frozen Variant.

Merge rule: mixins in `extends` order, then the file itself. Scalars: the last
one wins. Lists (targets, patches, requires, flags.*) append, in that order
(targets, patches and requires without repeats). Tables (cmake) merge key by key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError, UserError
from .flags import Flags, owned_macro_error
from .instrument import INSTRUMENTS

KEYS = (
    "description",
    "extends",
    "source",
    "toolchain",
    "build-type",
    "targets",
    "instrument",
    "patches",
    "requires",
    "cmake",
    "flags",
)
FLAG_KEYS = ("c", "cxx", "ld")
BUILD_TYPES = ("Release", "RelWithDebInfo", "Debug", "MinSizeRel")
NAME = re.compile(r"_?" + tf.NAME_PATTERN, re.ASCII)  # fullmatch only (see tomlfile.NAME)
NAME_RULE = tf.NAME_RULE + " (mixins: with '_')"
TARGET = re.compile(r"[A-Za-z0-9_.+-]+", re.ASCII)

DEFAULTS: dict[str, Any] = {
    "description": "",
    "source": "llama.cpp",
    "toolchain": "gcc",
    "build-type": "Release",
    "instrument": "none",
}
# What a variant builds when no spec says otherwise: enough to smoke and bench
# a kernel, without llama-cli, which drags in the server and mtmd.
DEFAULT_TARGETS = ("test-barrier", "test-backend-ops", "llama-simple", "llama-bench", "llama-completion")


@dataclass(frozen=True)
class Variant:
    name: str
    file: Path
    description: str
    extends: tuple[str, ...]  # every mixin merged, in merge order
    source: str
    toolchain: str
    build_type: str
    targets: tuple[str, ...]
    instrument: str
    patches: tuple[str, ...]
    requires: tuple[str, ...]
    cmake: tuple[tuple[str, str], ...]
    flags: Flags
    # Which file set each scalar and each list item, for errors found later
    # (an unknown toolchain is reported against the file that named it).
    origins: tuple[tuple[str, Path], ...] = field(default=(), compare=False)

    def origin(self, key: str) -> Path:
        return dict(self.origins).get(key, self.file)

    def describe(self) -> dict[str, Any]:
        """What the spec alone says (no compiler asked): `show` of a variant whose compiler is missing."""
        return {
            "variant": self.name,
            "description": self.description,
            "file": str(self.file),
            "extends": list(self.extends),
            "source": self.source,
            "toolchain": self.toolchain,
            "build_type": self.build_type,
            "instrument": self.instrument,
            "targets": list(self.targets),
            "patches": list(self.patches),
            "cmake": dict(self.cmake),
        }


def is_mixin(name: str) -> bool:
    return name.startswith("_")


def names(variants_dir: Path, *, mixins: bool = False) -> list[str]:
    return sorted(p.stem for p in variants_dir.glob("*.toml") if mixins or not is_mixin(p.stem))


def _validate(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Check one file's keys and types; return it normalised (tuples, rendered cmake)."""
    tf.check_keys(path, data, KEYS)
    out: dict[str, Any] = {}
    for key in ("description", "source", "toolchain"):
        if (v := tf.get_str(path, data, key)) is not None:
            out[key] = v
    if (v := tf.get_enum(path, data, "build-type", BUILD_TYPES)) is not None:
        out["build-type"] = v
    if (v := tf.get_enum(path, data, "instrument", INSTRUMENTS)) is not None:
        out["instrument"] = v
    for key in ("extends", "targets", "patches", "requires"):
        if (lst := tf.get_str_list(path, data, key)) is not None:
            out[key] = lst
    for i, target in enumerate(out.get("targets", ())):
        if not TARGET.fullmatch(target):
            raise SpecError(path, f"targets[{i}]", f'"{target}" is not a CMake target name')
    out["cmake"] = tf.render_cmake_table(path, tf.get_table(path, data, "cmake"), "cmake.")
    flags = tf.get_table(path, data, "flags")
    tf.check_keys(path, flags, FLAG_KEYS, "flags.")
    out["flags"] = Flags(*(tf.get_str_list(path, flags, k, "flags.") or () for k in FLAG_KEYS))
    for lang in ("c", "cxx"):
        if (bad := owned_macro_error(getattr(out["flags"], lang))) is not None:
            raise SpecError(path, f"flags.{lang}[{bad[0]}]", bad[1])
    return out


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _Resolver:
    def __init__(self, variants_dir: Path) -> None:
        self.dir = variants_dir
        self.cache: dict[str, dict[str, Any]] = {}

    def file(self, name: str) -> Path:
        return self.dir / f"{name}.toml"

    def raw(self, name: str) -> dict[str, Any]:
        if name not in self.cache:
            path = self.file(name)
            self.cache[name] = _validate(path, tf.load(path))
        return self.cache[name]

    def merged(self, name: str, chain: tuple[str, ...]) -> tuple[dict[str, Any], list[str], dict[str, Path]]:
        """Merged values, mixins in merge order, and which file set each key."""
        data = self.raw(name)
        path = self.file(name)
        acc: dict[str, Any] = {"cmake": {}, "flags": Flags()}
        order: list[str] = []
        origins: dict[str, Path] = {}
        for i, parent in enumerate(data.get("extends", ())):
            key = f"extends[{i}]"
            if parent in chain or parent == name:
                cycle = " -> ".join((*chain, name, parent))
                raise SpecError(path, key, f"extends cycle: {cycle}")
            if not self.file(parent).is_file():
                choices = names(self.dir, mixins=True)
                raise SpecError(path, key, f'unknown mixin "{parent}"' + tf.suggest(parent, choices))
            sub, sub_order, sub_origins = self.merged(parent, (*chain, name))
            _merge(acc, sub)
            order += [*sub_order, parent]
            origins.update(sub_origins)
        _merge(acc, data)
        origins.update({k: path for k in data if k not in ("cmake", "flags")})
        return acc, order, origins


def _merge(acc: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if key == "extends":
            continue
        if key == "cmake":
            acc["cmake"] = {**acc["cmake"], **value}
        elif key == "flags":
            acc["flags"] = acc["flags"] + value
        elif isinstance(value, tuple):
            acc[key] = _unique(acc.get(key, ()) + value)
        else:
            acc[key] = value


def check_name(name: str, where: str = "variant name") -> None:
    """A UserError unless name is a variant's, or one at another upstream version (NAME@VERSION)."""
    base, version = split_at(name)
    if not NAME.fullmatch(base) or (version is not None and not tf.NAME.fullmatch(version)):
        raise UserError(
            f'invalid {where} "{name}": names are made of {NAME_RULE}, with @VERSION for another '
            "upstream version"
        )


def split_at(name: str) -> tuple[str, str | None]:
    """NAME@VERSION as (NAME, VERSION); a plain name as (name, None)."""
    base, sep, version = name.partition("@")
    return base, (version if sep else None)


def resolve(variants_dir: Path, name: str) -> Variant:
    check_name(name)
    if "@" in name:
        raise UserError(f'"{name}": a spec is named without a version (the version is a build of it)')
    path = variants_dir / f"{name}.toml"
    if not path.is_file():
        known = names(variants_dir)
        raise UserError(f'unknown variant "{name}"' + tf.suggest(name, known) + f" (in {variants_dir})")
    data, order, origins = _Resolver(variants_dir).merged(name, ())
    full = {**DEFAULTS, **data}
    return Variant(
        name=name,
        file=path,
        description=full["description"],
        extends=_unique(tuple(order)),
        source=full["source"],
        toolchain=full["toolchain"],
        build_type=full["build-type"],
        targets=full.get("targets") or DEFAULT_TARGETS,
        instrument=full["instrument"],
        patches=full.get("patches", ()),
        requires=full.get("requires", ()),
        cmake=tuple(sorted(full["cmake"].items())),
        flags=full["flags"],
        origins=tuple(origins.items()),
    )
