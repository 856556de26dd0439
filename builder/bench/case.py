"""What a suite is made of: cases run on an installed variant, in a context (profile, threads, models)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..layout import Layout
from ..models import models
from ..models.installed import Installed
from ..run import Measured, measure
from ..store.results import Measurement
from . import environment
from .profiles import Profile

DEFAULT_LOAD_MODES = ("default",)
Say = Callable[[str], None]


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

    def model(self, size: str, type_: str = "q8_0") -> Path:
        default_type = "f16" if size == "tiny" else type_
        layers = self.layers if size == "wide" else None
        return models.ensure(
            self.layout.home / "models", models.spec_for(size, default_type, layers), self.say
        )

    def env(self, inst: Installed) -> dict[str, str]:
        """inst's benchmark processes' whole environment: of the caller's, only host/env.py's PASSED."""
        return environment.child(dict(self.profile.env), inst.runtime_env())

    def run(self, inst: Installed, argv: list[str]) -> Measured:
        m = measure(
            self.profile.wrap(argv), env=self.env(inst), inherit_env=False, timeout=self.profile.timeout
        )
        if m.returncode not in (0, None):
            raise BuildError(
                f"{inst.name}: {Path(argv[0]).name} failed with exit code {m.returncode}\n"
                f"  command: {shlex.join(m.argv)}\n" + "\n".join("  | " + ln for ln in m.tail().splitlines())
            )
        return m


def timeout(
    suite: str, metric: str, unit: str, params: dict[str, Any], ctx: Context, better: str
) -> Measurement:
    """The record of a process killed at the profile's timeout: a note, never a number."""
    return Measurement(suite, metric, unit, params, None, f"timeout after {ctx.profile.timeout:g} s", better)
