"""Questions (questions.toml): what a person builds the forks to find out, answered from stored runs.

A question names the entries it compares (VARIANT or VARIANT:FORMAT, the
first is the baseline), the suite, the published claim it is held against and
the `variant bench` arguments of the interleaved run that answers it. A
question on a user's model names it (`model`: a label, or 6 or more hex
digits of its identity; it picks the run and its cases), and its bench
arguments hold the --model that measures it (a label of catalogue.toml's
[models] or a path): `model` may be an identity or another catalogue's label,
which `variant bench` cannot resolve.
`variant report --questions` writes one table and one plot per question from
the newest stored run that measured its variants in its suite; a question
without one says so and prints the command that would answer it.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import tomlfile as tf
from ..bench.suites import SUITES
from ..errors import SpecError, UserError
from ..host import cgroup

KEYS = ("question", "claim", "suite", "entries", "bench", "model")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Question:
    name: str
    question: str
    claim: str
    suite: str
    entries: tuple[str, ...]  # the first is the baseline
    bench: tuple[str, ...]  # `variant bench`'s arguments that answer it (with a model: its --model)
    model: str | None = None  # a user's model (label or identity): answered by the runs that measured it
    memory_max: int | None = None  # bench's --memory-max: answered by the runs under that limit only

    @property
    def command(self) -> str:
        return shlex.join(["variant", "bench", *self.bench])


def load(path: Path) -> dict[str, Question]:
    if not path.is_file():
        raise UserError(f"{path}: no questions file (see README: variant report --questions)")
    data = tf.load(path)
    out = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise SpecError(path, name, "expected a table")
        tf.check_keys(path, table, KEYS, f"{name}.")
        text = {k: tf.get_str(path, table, k, f"{name}.") or "" for k in ("question", "claim", "suite")}
        entries = tf.get_str_list(path, table, "entries", f"{name}.") or ()
        bench = tf.get_str_list(path, table, "bench", f"{name}.") or ()
        if text["suite"] not in SUITES:
            raise SpecError(
                path, f"{name}.suite", f'unknown suite "{text["suite"]}"' + tf.suggest(text["suite"], SUITES)
            )
        if len(entries) < 2:
            raise SpecError(
                path, f"{name}.entries", "expected at least two entries (the first is the baseline)"
            )
        if not text["question"] or not bench:
            raise SpecError(path, name, "expected a question and the bench arguments that answer it")
        model = tf.get_str(path, table, "model", f"{name}.")
        if model is not None and not any(a == "--model" or a.startswith("--model=") for a in bench):
            raise SpecError(
                path, f"{name}.bench",
                "a question with a model gives the bench arguments that measure it: "
                "add --model LABEL or --model PATH",
            )  # fmt: skip
        limit = _limit(path, name, bench)
        out[name] = Question(
            name, text["question"], text["claim"], text["suite"], entries, bench, model, limit
        )
    return out


def _limit(path: Path, name: str, bench: tuple[str, ...]) -> int | None:
    """The --memory-max of the bench arguments, in bytes (a run without a limit cannot answer the
    question, nor a limited run a question without one)."""
    given = [b for a, b in itertools.pairwise(bench) if a == "--memory-max"]
    given += [a.removeprefix("--memory-max=") for a in bench if a.startswith("--memory-max=")]
    try:
        return cgroup.parse_size(given[-1]) if given else None
    except ValueError as exc:
        raise SpecError(path, f"{name}.bench", f"--memory-max: {exc}") from None
