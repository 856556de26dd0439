"""`--model`'s choice of cases, and the notes saying why a variant skipped a model.

People read a user's model by label and what it is, never by its identity
(compare.shown); they choose it by label or by the first hex digits of its identity.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from ..errors import UserError
from . import compare, skips

Keep = Callable[[dict[str, Any]], bool]  # a case's params -> whether it is shown
ID_PREFIX = re.compile(r"[0-9a-f]{6,}")  # fewer hex digits than 6 would name a label by accident


def matches(ref: str, params: dict[str, Any]) -> bool:
    if params.get("model") == ref:
        return True
    mid, prefix = params.get("model_id"), ref.lower()
    return mid is not None and ID_PREFIX.fullmatch(prefix) is not None and str(mid).startswith(prefix)


def identities(wanted: Sequence[str], cases: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """wanted with each label of a user's model replaced by its identity.

    Two runs (two catalogues) may label one model differently; compare shows it under one of them,
    and --model with either label must find it.
    """
    ids = {str(p["model"]): str(p["model_id"]) for p in cases if "model_id" in p and "model" in p}
    return tuple(ids.get(ref, ref) for ref in wanted)


def model_filter(wanted: Sequence[str], cases: Iterable[dict[str, Any]], runs: Collection[int]) -> Keep:
    """--model LABEL|IDENTITY (repeatable): which cases are of one of the models wanted (none: all).

    A model is named by its label (params "model", a generated model's name too) or by 6 or more hex
    digits its identity starts with. One that no case of `cases` (the params of runs) has is a UserError
    listing the models those runs measured, by label and what each is.
    """
    if not wanted:
        return lambda _params: True
    cases = list(cases)
    for ref in wanted:
        if not any(matches(ref, p) for p in cases):
            where = ("run " if len(runs) == 1 else "runs ") + " and ".join(map(str, sorted(runs)))
            raise UserError(
                f"--model {ref}: {where} measured no model of that label or identity (expected a label, "
                f"or 6 or more hex digits of an identity; models measured: {_models(cases) or 'none'})"
            )
    return lambda params: any(matches(ref, params) for ref in wanted)


def _models(cases: list[dict[str, Any]]) -> str:
    """Each model once, "label (about)" where a case says what it is (a skipped-by-all row does not)."""
    found: dict[str, str] = {}
    for p in cases:
        if "model" in p:
            key = str(p.get("model_id") or p["model"])
            if key not in found or "model_about" in p:
                found[key] = compare.shown(p)["model"]
    return ", ".join(sorted(found.values()))


def skip_notes(rows: list[sqlite3.Row], variants: list[str]) -> list[str]:
    """Why a report's cells say "skipped": once per variant (of the entries) and model, whatever the cases.

    The model by label and what it is; rows are measurements (skips.skips reads their SKIPPED notes).
    """
    names = compare.variants_of(variants)
    models = {str(p.get("model_id")): _model(p) for p in (json.loads(r["params"]) for r in rows)}
    found = [
        (names.index(v), models[mid], v, why) for (v, mid), why in skips.skips(rows).items() if v in names
    ]
    return [f"{v} skipped {model}: {why}" for _, model, v, why in sorted(found)]


def _model(params: dict[str, Any]) -> str:
    return compare.cell(str(compare.shown(params).get("model", "the model")))
