"""`variant matrix`: the build cells of the catalogue (variant x runner), grouped into jobs.

A cell is one variant on one runner. Cells of one runner that share a source and a toolchain
form a group, and a group goes to one job, so that the runner builds siblings back to back and
all but the first hit the compile cache (the ccache win: a sibling recompiles only what its
options or patches change). A group with more cells than `cells-per-job` is cut into shards of
near-equal size. Every job also builds the baselines its variants are smoked against (the same
spec without patches), so it can check and bench them on its own.

The JSON form is what GitHub Actions' `fromJSON` takes as a matrix: `{"include": [job, ...]}`.
Only the specs are read (no compiler is looked up), so a bare runner with Python can plan.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError, UserError
from ..layout import Layout
from ..source import sources as sources_mod
from ..spec import variant as spec
from ..spec.variant import Variant
from .runners import MAX_JOBS, Config, Runner

FILTER_KEYS = ("variant", "runner", "toolchain", "source")


@dataclass(frozen=True)
class Cell:
    variant: Variant
    runner: Runner

    @property
    def name(self) -> str:
        return self.variant.name

    def field(self, key: str) -> str:
        return {
            "variant": self.variant.name,
            "runner": self.runner.name,
            "toolchain": self.variant.toolchain,
            "source": self.variant.source,
        }[key]


@dataclass(frozen=True)
class Job:
    runner: Runner
    source: str
    toolchain: str
    shard: int  # 1-based
    shards: int
    cells: tuple[Cell, ...]
    build: tuple[str, ...]  # the cells' variants plus the baselines they need, in build order

    @property
    def name(self) -> str:
        base = f"{self.runner.name}-{self.source}-{self.toolchain}"
        return base + (f"-{self.shard}of{self.shards}" if self.shards > 1 else "")

    @property
    def group(self) -> str:
        return f"{self.runner.name}-{self.source}-{self.toolchain}"

    def include(self) -> dict[str, Any]:
        """One entry of the GitHub matrix: plain strings, except runs-on (a list of labels)."""
        return {
            "name": self.name,
            "runner": self.runner.name,
            "runs-on": list(self.runner.runs_on),
            "image": self.runner.image,
            "source": self.source,
            "toolchain": self.toolchain,
            "shard": f"{self.shard}/{self.shards}",
            "group": self.group,
            "variants": " ".join(c.name for c in self.cells),
            "build": " ".join(self.build),
        }


def parse_filters(filters: tuple[str, ...]) -> list[tuple[str, str]]:
    """`GLOB` (a variant name) or `KEY=GLOB` with KEY one of FILTER_KEYS.

    Filters on the same key are alternatives, filters on different keys must all match:
    `--filter a --filter b --filter runner=x64` is (variant a or b) on runner x64."""
    out = []
    for f in filters:
        key, sep, pattern = f.partition("=")
        if not sep:
            key, pattern = "variant", f
        if key not in FILTER_KEYS:
            raise UserError(f'--filter {f}: unknown key "{key}" (expected one of: {", ".join(FILTER_KEYS)})')
        out.append((key, pattern))
    return out


def _essence(v: Variant) -> tuple[Any, ...]:
    # As smoke/baseline.default_baseline, on the spec: a baseline is the same build without the patches.
    return (v.source, v.toolchain, v.build_type, v.instrument, v.cmake, v.flags)


def _changes(v: Variant) -> int:
    """How far a spec is from the recipe's defaults (options, flags, instrument, build type)."""
    flags = len(v.flags.c) + len(v.flags.cxx) + len(v.flags.ld)
    return len(v.cmake) + flags + (v.instrument != "none") + (v.build_type != "Release")


def baseline_of(v: Variant, variants: list[Variant]) -> str | None:
    if not v.patches:
        return None
    found = [o.name for o in variants if not o.patches and o.name != v.name and _essence(o) == _essence(v)]
    return found[0] if found else None


def _resolved(layout: Layout) -> list[Variant]:
    """Every variant, each with a tree to build, or the spec error `variant build` would give.

    A variant that does not resolve gets no CI job: the matrix is refused (as for any other
    spec error), so no value of it is a string a spec made up. Its source is a name of
    sources.toml, which follows the name rule like variant and runner names.
    """
    sources = sources_mod.load_all(layout.sources_file)
    variants = [spec.resolve(layout.variants_dir, n) for n in spec.names(layout.variants_dir)]
    for v in variants:
        src = sources.get(v.source)
        if src is None:
            why = f"unknown source {json.dumps(v.source)}" + tf.suggest(v.source, sources)
            raise SpecError(v.origin("source"), "source", f"{why} (in {layout.sources_file})")
        if src.role != "tree":
            why = f'"{src.name}" is a dependency (role = "dependency"), not a tree to build'
            raise SpecError(v.origin("source"), "source", why)
    return variants


def cells(layout: Layout, config: Config, filters: tuple[str, ...] = ()) -> list[Cell]:
    wanted = parse_filters(filters)
    variants = _resolved(layout)
    out = []
    for runner in config.runners:
        for v in variants:
            if v.toolchain not in runner.toolchains:
                continue
            cell = Cell(v, runner)
            if all(
                any(fnmatch.fnmatchcase(cell.field(k), p) for k2, p in wanted if k2 == k) for k, _ in wanted
            ):
                out.append(cell)
    if not out:
        raise UserError("the matrix is empty: no variant matches the filters on any runner")
    return out


def jobs(layout: Layout, config: Config, filters: tuple[str, ...] = ()) -> list[Job]:
    every = _resolved(layout)
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells(layout, config, filters):
        groups.setdefault((c.runner.name, c.variant.source, c.variant.toolchain), []).append(c)
    out = []
    for members in groups.values():
        # Plainest first (the group's bench baseline): siblings that add patches or options
        # to it then hit its objects in the cache.
        members.sort(key=lambda c: (len(c.variant.patches), _changes(c.variant), c.variant.name))
        shards = math.ceil(len(members) / config.cells_per_job)
        size = math.ceil(len(members) / shards)
        for i in range(shards):
            part = tuple(members[i * size : (i + 1) * size])
            names = [c.name for c in part]
            # baselines from outside the shard first; the shard's own keep their place
            needed = [b for c in part if (b := baseline_of(c.variant, every)) and b not in names]
            build = tuple(dict.fromkeys([*needed, *names]))
            first = members[0]
            out.append(
                Job(first.runner, first.variant.source, first.variant.toolchain, i + 1, shards, part, build)
            )
    if len(out) > MAX_JOBS:
        raise UserError(
            f"the matrix has {len(out)} jobs, more than GitHub's {MAX_JOBS}: raise matrix.cells-per-job "
            f"in {config.file} or narrow it with --filter"
        )
    return out


def runner_jobs(layout: Layout, config: Config, filters: tuple[str, ...], runner: str | None) -> list[Job]:
    """The jobs of one runner (default: the first declared), for a local run."""
    name = config.runner(runner).name if runner else config.runners[0].name
    found = [j for j in jobs(layout, config, filters) if j.runner.name == name]
    if not found:
        raise UserError(f"no cell of the matrix runs on {name} with these filters")
    return found


def github(jobs: list[Job]) -> dict[str, Any]:
    return {"include": [j.include() for j in jobs]}
