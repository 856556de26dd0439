"""The one check of a results export's records (`variant results import`): every field's type and range.

A file to import comes from another machine, a CI artifact, or a hand edit;
whatever it holds must be what the store's columns hold (storecheck.py) before
any of it is written, or a stored "fast" breaks `variant compare` on every
call after it. JSON as Python reads it also has NaN, Infinity, integers of any
size and true/false that are ints: each is refused where a finite number, an
SQLite integer or text belongs. An error names the file, the run and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..store.storecheck import BETTER, INT64, NotHardware, hardware_json
from ..tomlfile import ENV_NAME

RUN_KEYS = ("uuid", "started", "host", "profile", "command")
MEASUREMENT_KEYS = (
    "variant", "hash", "source_commit", "patches", "suite", "metric", "unit", "params", "rep", "value",
    "better", "note", "time",
)  # fmt: skip
TEXT = ("variant", "hash", "source_commit", "suite", "metric", "unit", "note", "time")


@dataclass(frozen=True)
class Run:
    uuid: str
    started: str
    host: str
    profile: str
    command: str
    env: dict[str, str] | None  # None: not recorded (a version 1 file, or a run from before)
    hardware: dict[str, Any] | None  # None: not recorded (a version 1 or 2 file, or a run from before)
    measurements: tuple[tuple[Any, ...], ...]  # each in MEASUREMENT_KEYS order, checked

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, k) for k in RUN_KEYS)


class Bad(Exception):
    """A value is not what it must be: what was expected, and where (the field, filled in on the way up)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def inside(self, key: str) -> Bad:
        """The same error one level up: key (".name" or "[3]") in front of the field."""
        return Bad(self.message, key + self.field)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, expected: str = "a string") -> str:
    if not isinstance(value, str):
        raise Bad(f"expected {expected}, got {_shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON escapes allow it, SQLite's text does not
        raise Bad(f"expected {expected} of Unicode characters, got {_shown(value)}") from None
    return value


def _json_text(value: Any, kind: type[dict[str, Any]] | type[list[Any]], what: str) -> str:
    """Text holding JSON of kind (as the store keeps params and patches); no NaN or Infinity in it."""
    expected = f"a string holding a JSON {what}"
    text = _text(value, expected)

    def constant(name: str) -> Any:
        raise Bad(f"expected {expected}, got {_shown(text)} (JSON has no {name})")

    try:
        parsed = json.loads(text, parse_constant=constant)
    except ValueError:
        raise Bad(f"expected {expected}, got {_shown(text)}") from None
    strings = not isinstance(parsed, list) or all(isinstance(x, str) for x in parsed)
    if not isinstance(parsed, kind) or not strings:
        raise Bad(f"expected {expected}, got {_shown(text)}")
    return text


def _rep(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Bad(f"expected an integer, got {_shown(value)}")
    if not 0 <= value <= INT64[1]:
        raise Bad(f"expected an integer from 0 to {INT64[1]} (SQLite's 64-bit range), got {value}")
    return value


def _value(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"expected a finite number or null, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any double
        number = math.inf
    if not math.isfinite(number):
        got = value if isinstance(value, float) else "an integer beyond any double"
        raise Bad(f"expected a finite number or null, got {got}")
    return number


def _better(value: Any) -> str:
    if value not in BETTER:
        raise Bad(f'expected "lower" or "higher", got {_shown(value)}')
    return str(value)


def _env(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Bad(f"expected an object of NAME: VALUE strings, or null, got {_shown(value)}")
    for k, v in value.items():
        if not ENV_NAME.fullmatch(k):
            raise Bad(f"expected variable names of letters, digits and _, got {_shown(k)}")
        if "\0" in _text(v, f"a string for {k}"):
            raise Bad(f"{k}: a value cannot hold a NUL byte")
    return dict(value)


def _hardware(value: Any) -> dict[str, Any] | None:
    """The machine's record: free-form JSON, held to what the store holds (storecheck.hardware_json)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Bad(f"expected an object (the machine's record), or null, got {_shown(value)}")
    try:
        hardware_json(value)
    except NotHardware as exc:
        raise Bad(exc.message, exc.field) from None
    return value


def _keys(obj: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Bad(f"expected {what}, got {_shown(obj)}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise Bad(f"missing {', '.join(missing)}")
    unknown = [k for k in obj if k not in keys]
    if unknown:
        raise Bad(f"unknown key {', '.join(map(str, unknown))} (expected {', '.join(keys)})")
    return obj


CHECKS: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(TEXT, _text),
    "rep": _rep,
    "value": _value,
    "better": _better,
}


def _measurement(m: Any) -> tuple[Any, ...]:
    """One measurement's values in MEASUREMENT_KEYS order; Bad names the field that is wrong."""
    fields = _keys(m, MEASUREMENT_KEYS, "an object (a measurement)")
    out = []
    for key in MEASUREMENT_KEYS:
        try:
            if key == "params":
                out.append(_json_text(fields[key], dict, "object"))
            elif key == "patches":
                out.append(_json_text(fields[key], list, "array of strings"))
            else:
                out.append(CHECKS[key](fields[key]))
        except Bad as exc:
            raise exc.inside(f".{key}") from None
    return tuple(out)


def _run(raw: Any, version: int) -> Run:
    added = (("env", 2), ("hardware", 3))  # a key and the format version that brought it
    keys = (*RUN_KEYS, "measurements", *(key for key, since in added if version >= since))
    fields = _keys(raw, keys, "an object (a run)")
    values: dict[str, Any] = {}
    for key in keys:
        try:
            if key == "uuid":
                values[key] = _text(fields[key], "a non-empty string (the run's identity)")
                if not values[key]:
                    raise Bad("expected a non-empty string (the run's identity)")
            elif key == "env":
                values[key] = _env(fields[key])
            elif key == "hardware":
                values[key] = _hardware(fields[key])
            elif key != "measurements":
                values[key] = _text(fields[key])
        except Bad as exc:
            raise exc.inside(f".{key}") from None
    ms = fields["measurements"]
    if not isinstance(ms, list):
        raise Bad(f"expected a list, got {_shown(ms)}", ".measurements")
    checked = []
    for j, m in enumerate(ms):
        try:
            checked.append(_measurement(m))
        except Bad as exc:
            raise exc.inside(f".measurements[{j}]") from None
    return Run(
        **{k: values[k] for k in RUN_KEYS}, env=values.get("env"), hardware=values.get("hardware"),
        measurements=tuple(checked),
    )  # fmt: skip


def run(path: Path, i: int, raw: Any, version: int) -> Run:
    """runs[i] of the file at path, checked whole; a UserError naming the file, the run and the field."""
    try:
        return _run(raw, version)
    except Bad as exc:
        uuid = raw.get("uuid") if isinstance(raw, dict) else None
        run = f" (run {_shown(uuid)})" if isinstance(uuid, str) and uuid else ""
        raise UserError(f"{path}: runs[{i}]{exc.field}: {exc.message}{run}") from None
