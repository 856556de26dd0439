"""Options several commands share: --model (own models, and the command line stored with a run),
--load-mode and --memory-max."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..bench.case import DEFAULT_LOAD_MODES
from ..errors import UserError
from ..host import cgroup
from ..layout import Layout
from ..models import own
from . import app

F = TypeVar("F", bound=Callable[..., Any])


def own_models(layout: Layout, refs: tuple[str, ...]) -> tuple[own.OwnModel, ...]:
    """--model REF...: each read (headers only) and identified; one model given twice is run once."""
    found: dict[str, own.OwnModel] = {}
    labels: dict[str, str] = {}
    for ref in refs:
        m = own.resolve(ref, layout.config_file)
        app.say(f"model {m.label}: {m.about()} (identity {m.identity})")
        if labels.setdefault(m.label, m.identity) != m.identity:
            raise UserError(
                f'--model: two different models are labelled "{m.label}" ({labels[m.label]} and '
                f"{m.identity}); name them apart: --model LABEL=PATH"
            )
        found.setdefault(m.identity, m)
    return tuple(found.values())


def recorded(argv: list[str], mine: tuple[own.OwnModel, ...]) -> str:
    """The command line a run stores (PR.md prints it), each --model by its label, never its path.

    A path is this machine's; the label is what the results call the model. The stored command
    reruns where catalogue.toml's [models] names the label.
    """
    by_path = {str(p): m.label for m in mine for p in m.parts}
    labels = {m.label for m in mine}

    def label_of(ref: str) -> str:
        named = ref.partition("=")[0]
        if "=" in ref and named in labels:
            return named
        return by_path.get(str(Path(ref).expanduser().absolute()), ref)

    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] == "--model":
            out.append(label_of(arg))
        elif arg.startswith("--model="):
            out.append("--model=" + label_of(arg.removeprefix("--model=")))
        else:
            out.append(arg)
    return shlex.join(["variant", *out])


def parse_load_modes(value: str | None) -> tuple[str, ...]:
    if not value:
        return DEFAULT_LOAD_MODES
    modes = tuple(dict.fromkeys(m.strip() for m in value.split(",")))
    bad = [m for m in modes if not re.fullmatch(r"[a-z][a-z0-9+_-]*", m)]
    if bad:
        raise UserError(f'--load-mode: "{bad[0]}" is not a load mode name (e.g. mmap, none, dio)')
    return modes


def memory_size(text: str | None) -> int | None:
    """--memory-max SIZE in bytes (a click error, exit 2, for one that is not a size)."""
    try:
        return None if text is None else cgroup.parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--memory-max") from None


def memory_max_option(text: str) -> Callable[[F], F]:
    """--memory-max SIZE, parsed to bytes (bench's and profile's, each with its own help)."""
    return click.option("--memory-max", callback=lambda _c, _p, v: memory_size(v), metavar="SIZE", help=text)


def parse_threads(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        threads = tuple(int(x) for x in value.split(","))
    except ValueError:
        raise UserError(f'--threads: expected a comma-separated list of integers, got "{value}"') from None
    if any(t < 1 for t in threads):
        raise UserError("--threads: thread counts must be at least 1")
    return threads
