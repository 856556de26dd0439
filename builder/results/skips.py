"""Cells that never ran: a variant that cannot run a user's model records a SKIPPED note, not a figure.

compare.py leaves them out of its groups and asks here why a side is empty,
or which models neither side ran.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from ..store.results import SKIPPED


def skipped(row: sqlite3.Row) -> bool:
    return row["value"] is None and str(row["note"]).startswith(SKIPPED)


def skips(rows: list[sqlite3.Row]) -> dict[tuple[str, str], str]:
    """(variant, model identity) -> why the variant did not run that model."""
    return {
        (r["variant"], str(json.loads(r["params"]).get("model_id"))): str(r["note"])[len(SKIPPED) :]
        for r in rows
        if skipped(r)
    }


def unrun(
    rows: list[sqlite3.Row], measured: Collection[tuple[str, str]], variants: list[str]
) -> list[tuple[str, dict[str, Any], str]]:
    """(suite, the model's params, each variant's reason) for every suite and model none of variants ran.

    measured: the (suite, model identity) pairs that have figures.
    """
    # by identity: one model under two labels (two runs, two catalogues) is one row, named by the first
    why: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    named: dict[str, tuple[str, str]] = {}
    for r in rows:
        if skipped(r) and r["variant"] in variants:
            p = json.loads(r["params"])
            mid = str(p.get("model_id"))
            named.setdefault(mid, (str(p.get("model")), str(p.get("model_about"))))
            why[(r["suite"], mid)][r["variant"]] = r["note"]
    return [
        (
            s,
            {"model": named[mid][0], "model_id": mid, "model_about": named[mid][1]},
            "; ".join(f"{v} {n}" for v, n in by.items()),
        )
        for (s, mid), by in sorted(why.items())
        if (s, mid) not in measured
    ]
