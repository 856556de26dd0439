"""Questions (questions.toml): what a person builds the forks to find out, answered from stored runs.

A question names the entries it compares (VARIANT or VARIANT:FORMAT, the
first is the baseline), the suite, the published claim it is held against and
the `variant bench` arguments of the interleaved run that answers it.
`variant report --questions` writes one table and one plot per question from
the newest stored run that measured its variants in its suite; a question
without one says so and prints the command that would answer it.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError, UserError
from . import compare, results, stats
from .suites import SUITES

KEYS = ("question", "claim", "suite", "entries", "bench")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Question:
    name: str
    question: str
    claim: str
    suite: str
    entries: tuple[str, ...]  # the first is the baseline
    bench: tuple[str, ...]  # the arguments of `variant bench` that answer it

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
        out[name] = Question(name, text["question"], text["claim"], text["suite"], entries, bench)
    return out


def answer(con: sqlite3.Connection, q: Question, out: Path, plot: Callable[..., None]) -> dict[str, Any]:
    """The question's section of the report: its run, table, pairwise comparisons and plot."""
    section: dict[str, Any] = {"q": q, "command": q.command}
    variants = compare.variants_of(list(q.entries))
    run_id = results.latest_run_with(con, variants, q.suite)
    if run_id is None:
        return {**section, "run": None}
    run = dict(con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
    rows = results.rows(con, run_id, variants, q.suite)
    groups = compare.grouped(rows, list(q.entries))
    png = out / f"{q.name}.png"
    plot(png, f"{q.name} ({q.suite})", groups, list(q.entries))
    table = []
    for (_s, metric, unit, params, better), by_entry in sorted(groups.items()):
        cells = []
        for e in q.entries:
            vals = [x for x in by_entry.get(e, {}).values() if x is not None]
            cells.append(stats.summarize(vals).fmt() if vals else "-")
        case = " ".join(f"{k}={v}" for k, v in json.loads(params).items())
        table.append({"metric": metric, "unit": unit, "better": better, "case": case, "cells": cells})
    comparisons = []
    for other in q.entries[1:]:
        _, pairs = compare.pair_rows(con, q.entries[0], other, q.suite, run_id)
        comparisons.append(
            {
                "title": f"{other} vs {q.entries[0]}:",
                "table": compare.render(pairs, q.entries[0], other, "md"),
            }
        )
    return {**section, "run": run, "plot": png.name, "rows": table, "comparisons": comparisons}
