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

SKIPPED = "skipped: "  # the note of a cell that never ran: the variant cannot run the model (support.py)


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
    why: dict[tuple[str, str, str, str], dict[str, str]] = defaultdict(dict)
    for r in rows:
        if skipped(r) and r["variant"] in variants:
            p = json.loads(r["params"])
            key = (r["suite"], str(p.get("model_id")), str(p.get("model")), str(p.get("model_about")))
            why[key][r["variant"]] = r["note"]
    return [
        (
            s,
            {"model": label, "model_id": mid, "model_about": about},
            "; ".join(f"{v} {n}" for v, n in by.items()),
        )
        for (s, mid, label, about), by in sorted(why.items())
        if (s, mid) not in measured
    ]
