"""What a suite is made of: cases run on an installed variant, in a context (profile, threads, models)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BuildError, UserError
from ..host import cgroup
from ..layout import Layout
from ..models import models, support
from ..models.installed import Installed
from ..models.own import OwnModel
from ..run import Measured, measure
from ..store.results import SKIPPED, Measurement
from . import environment
from .profiles import Profile

DEFAULT_LOAD_MODES = ("default",)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """A model a case runs on: the generated wide model in one weight type, or one of the user's."""

    path: Path
    params: dict[str, Any]  # how measurements name it
    size: int  # bytes, all parts
    own: OwnModel | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file of the model: a split model's parts, or the one file."""
        return self.own.parts if self.own else (self.path,)


@dataclass(frozen=True)
class Case:
    suite: str
    label: str
    run: Callable[[Installed], list[Measurement]]


@dataclass(frozen=True)
class Context:
    layout: Layout
    profile: Profile
    threads: tuple[int, ...]
    say: Say
    load_modes: tuple[str, ...] = DEFAULT_LOAD_MODES
    layers: int | None = None  # the wide model's layer count (default: its own)
    insts: tuple[Installed, ...] = ()  # the run's variants, baseline first
    recipe: str | None = None  # the formats suite's model recipe (default: the first fork's)
    types: tuple[str, ...] = ("q8_0",)  # the e2e suite's wide model, in each of these weight types
    own: tuple[OwnModel, ...] = ()  # the user's models (--model): the suites run on them instead
    skips: tuple[tuple[str, str, str], ...] = ()  # (variant, model identity, why it cannot run it)
    numa: tuple[str, ...] = ()  # the programs' --numa arguments (the profile's numa)
    allow_swap: bool = False  # run resident load modes even for a model larger than memory
    drop_caches: bool = False  # cold loads empty the whole page cache (root), not each file's pages
    paddings: tuple[tuple[str, int], ...] = ()  # variant -> its source's kv-padding (sources.toml)

    def kv_padding(self, inst: Installed) -> int:
        """The KV cells inst's code base rounds a token's attention up to (models/traffic.py)."""
        return dict(self.paddings).get(inst.name, 256)

    def targets(self, type_: str | None = None) -> list[Target]:
        """What a model suite runs on: the user's models when given, else the wide model (in type_)."""
        if self.own:
            return [Target(m.path, m.params(), m.size, m) for m in self.own]
        path = self.model("wide", type_ or self.types[0])
        return [Target(path, {"model": path.name.split("-")[1]}, path.stat().st_size)]

    def why_skipped(self, inst: Installed, target: Target) -> str | None:
        """Why inst cannot run target's model (its types), decided before the run; None: it can."""
        if target.own is None:
            return None
        return next(
            (why for v, mid, why in self.skips if v == inst.name and mid == target.own.identity), None
        )

    def timeout(self, target: Target | None) -> float:
        """The profile's timeout; unless one was given, a user's model gets time to match its size."""
        base = self.profile.timeout
        if target is None or self.profile.timeout_given:
            return base
        return support.timeout_for(target.own, base)

    def model(self, size: str, type_: str = "q8_0") -> Path:
        default_type = "f16" if size == "tiny" else type_
        layers = self.layers if size == "wide" else None
        return models.ensure(
            self.layout.home / "models", models.spec_for(size, default_type, layers), self.say
        )

    def env(self, inst: Installed) -> dict[str, str]:
        """inst's benchmark processes' whole environment: of the caller's, only host/env.py's PASSED."""
        return environment.child(dict(self.profile.env), inst.runtime_env())

    def run(
        self, inst: Installed, argv: list[str], target: Target | None = None, *, huge_pages: bool = False
    ) -> Measured:
        """argv under the profile; huge_pages: sample its AnonHugePages (run.measure: it costs CPU)."""
        group = self.profile.cgroup
        ooms = group.oom_kills() if group else 0
        m = measure(
            self.profile.wrap(argv),
            env=self.env(inst),
            inherit_env=False,
            timeout=self.timeout(target),
            huge_pages=huge_pages,
        )
        if group and m.returncode not in (0, None) and group.oom_kills() > ooms:
            # not the variant's fault: the profile's limit is below what the program needs (killed
            # itself, or under a profiler that then exits with an ordinary code)
            raise UserError(
                f"{inst.name}: {Path(argv[0]).name} was killed by the memory limit of profile "
                f"{self.profile.name} (memory-max = {cgroup.shown(group.limit)}): the limit is below what "
                "it needs besides the model's pages (its buffers, KV cache, the program); raise memory-max"
            )
        if m.returncode not in (0, None):
            raise BuildError(
                f"{inst.name}: {Path(argv[0]).name} failed with exit code {m.returncode}\n"
                f"  command: {shlex.join(m.argv)}\n" + "\n".join("  | " + ln for ln in m.tail().splitlines())
            )
        return m


def timeout(
    suite: str, metric: str, unit: str, params: dict[str, Any], ctx: Context, better: str,
    target: Target | None = None,
) -> Measurement:  # fmt: skip
    """The record of a process killed at the profile's timeout: a note, never a number."""
    return Measurement(suite, metric, unit, params, None, f"timeout after {ctx.timeout(target):g} s", better)


def skipped(suite: str, metric: str, unit: str, params: dict[str, Any], why: str, better: str) -> Measurement:
    """The record of a case the variant cannot run (the model's types): its reason, never a number."""
    return Measurement(suite, metric, unit, params, None, SKIPPED + why, better)
