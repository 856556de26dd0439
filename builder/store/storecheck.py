"""What results.sqlite must hold before anything reads it: our tables, our columns, rows of their types.

SQLite stores whatever it is given ("fast" in a REAL column, text in an
INTEGER one), and a file can be anything by the time it is opened again: a
copy cut short, another program's database, rows written by an older tool's
unchecked import. Every command that opens the store checks it whole, and a
store that fails says where (file, table, row, column) instead of failing later
in a comparison, on every call, with a traceback. The checks run in SQL, one
pass per table; a hardware record, free-form JSON, is checked whole before it
is written (hardware_json), by the run that records it and by the import.
"""

from __future__ import annotations

import json
import math
import shlex
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UserError

# Every column of ours and its declared type; MIGRATED columns may be missing (older stores: added).
COLUMNS = {
    "runs": {
        "id": "INTEGER", "started": "TEXT", "host": "TEXT", "profile": "TEXT", "command": "TEXT",
        "uuid": "TEXT", "env": "TEXT", "hardware": "TEXT",
    },
    "measurements": {
        "id": "INTEGER", "run_id": "INTEGER", "variant": "TEXT", "hash": "TEXT", "source_commit": "TEXT",
        "patches": "TEXT", "suite": "TEXT", "metric": "TEXT", "unit": "TEXT", "params": "TEXT",
        "rep": "INTEGER", "value": "REAL", "better": "TEXT", "note": "TEXT", "time": "TEXT",
    },
}  # fmt: skip
MIGRATED = {"runs": ("uuid", "env", "hardware")}
BETTER = ("lower", "higher")
INT64 = (-(2**63), 2**63 - 1)  # what an SQLite INTEGER holds
REAL_MAX = 1.7976931348623157e308  # the largest finite double: beyond it is infinity
HARDWARE_DEPTH = 4  # objects and lists inside one another in a hardware record, the record the first
HARDWARE_BYTES = 64 * 1024  # a hardware record as stored: a machine's description, not a copy of /sys


def _text(c: str) -> str:
    return f"typeof({c}) = 'text'"


def _json(c: str, kind: str, items: str | None = None) -> str:
    """c is JSON text of kind (object, array); with items, every element of that JSON type."""
    each = f"NOT EXISTS (SELECT 1 FROM json_each({c}) WHERE type != '{items}')" if items else "1"
    return (
        f"CASE WHEN typeof({c}) != 'text' THEN 0 WHEN NOT json_valid({c}) THEN 0"
        f" WHEN json_type({c}) != '{kind}' THEN 0 ELSE {each} END"
    )


# (column, condition a good row meets, what was expected), per table.
ROWS = {
    "runs": [
        *((c, _text(c), "text") for c in ("started", "host", "profile", "command")),
        ("uuid", f"{_text('uuid')} AND length(uuid) > 0", "a non-empty text (the run's identity)"),
        ("env", f"env IS NULL OR ({_json('env', 'object', 'text')})",
         "null or a JSON object of text values (NAME: VALUE)"),
        ("hardware", f"hardware IS NULL OR ({_json('hardware', 'object')})",
         "null or a JSON object (the machine's record)"),
    ],
    "measurements": [
        ("run_id", "typeof(run_id) = 'integer' AND EXISTS (SELECT 1 FROM runs r WHERE r.id = run_id)",
         "the id of a stored run"),
        *((c, _text(c), "text") for c in ("variant", "hash", "source_commit", "suite", "metric", "unit")),
        ("patches", _json("patches", "array", "text"), "a JSON array of text"),
        ("params", _json("params", "object"), "a JSON object"),
        ("rep", "typeof(rep) = 'integer' AND rep >= 0", "an integer >= 0"),
        ("value", f"value IS NULL OR (typeof(value) IN ('real', 'integer') AND abs(value) <= {REAL_MAX!r})",
         "a finite number or null"),
        ("better", "better IN ('lower', 'higher')", 'text "lower" or "higher"'),
        *((c, _text(c), "text") for c in ("note", "time")),
    ],
}  # fmt: skip


class NotHardware(ValueError):
    """Not a record runs.hardware holds: what is wrong, and where in it (".key" or "[3]"; "": the whole)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"hardware{field}: {message}")
        self.message = message
        self.field = field


def hardware_json(record: Mapping[str, Any]) -> str:
    """record as runs.hardware holds it; NotHardware if it is not JSON that every store's import reads.

    The same check for a record made here (start_run) and one imported
    (results/records.py), so that what one machine stores another imports:
    JSON values only (no NaN or Infinity, keys and text all Unicode), at most
    HARDWARE_DEPTH deep and HARDWARE_BYTES long.
    """
    if not isinstance(record, Mapping):
        raise NotHardware(f"expected a mapping, got {type(record).__name__}")
    text = json.dumps(_plain(record, "", 1), allow_nan=False)
    if len(text) > HARDWARE_BYTES:  # ASCII: json.dumps escapes the rest
        raise NotHardware(f"{len(text)} bytes of JSON, expected at most {HARDWARE_BYTES}")
    return text


def _unicode(text: str) -> bool:
    """No lone surrogate ("\\ud800"): JSON escapes allow one, but it cannot be printed or written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain(value: Any, field: str, depth: int) -> Any:
    """value checked (NotHardware naming the field) and made of dicts and lists for json.dumps."""
    if isinstance(value, Mapping | list | tuple):
        if depth > HARDWARE_DEPTH:
            raise NotHardware(f"nested deeper than {HARDWARE_DEPTH} objects and lists", field)
        if not isinstance(value, Mapping):
            return [_plain(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
        for key in value:
            if not isinstance(key, str) or not _unicode(key):
                raise NotHardware(f"expected keys of Unicode text, got {key!r}", field)
        return {k: _plain(v, f"{field}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, str) and not _unicode(value):
        raise NotHardware(f"expected text of Unicode characters, got {value[:40]!r}", field)
    if isinstance(value, float) and not math.isfinite(value):
        raise NotHardware(f"expected a finite number, got {value}", field)
    if value is None or isinstance(value, str | int | float):
        return value
    raise NotHardware(f"expected text, a number, true/false or null, got {type(value).__name__}", field)


def tables(con: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that holds anything but our tables (checked before ours are created in it)."""
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    foreign = sorted(n for n in names if n not in COLUMNS and not n.startswith("sqlite_"))
    if foreign:
        raise UserError(
            f"{path}: not a results database of this tool (it holds table {', '.join(foreign)}; "
            "this tool keeps runs and measurements); move it aside, or set VARIANT_HOME elsewhere"
        )


def columns(con: sqlite3.Connection, path: Path) -> None:
    """Our tables have our columns, of our declared types (older stores: some MIGRATED ones missing)."""
    for table, want in COLUMNS.items():
        have = {r[1]: (str(r[2]).upper(), r[5]) for r in con.execute(f"PRAGMA table_info({table})")}
        where = f"{path}: table {table} is not this tool's"
        for name, (decl, pk) in have.items():
            if name not in want:
                raise UserError(f"{where}: it has a column {name} this tool does not know")
            if decl != want[name] or (name == "id") != bool(pk):
                raise UserError(
                    f"{where}: column {name} is {decl or 'untyped'}{' PRIMARY KEY' if pk else ''}, "
                    f"expected {want[name]}{' PRIMARY KEY' if name == 'id' else ''}"
                )
        missing = [c for c in want if c not in have and c not in MIGRATED.get(table, ())]
        if missing:
            raise UserError(f"{where}: it has no column {', '.join(missing)}")


def uuids(con: sqlite3.Connection, path: Path) -> None:
    """No two runs share a uuid: the unique index on it is created next and would stop on them.

    A store of ours always has that index; one without it (dropped, or made by
    hand) may hold a run twice, which CREATE UNIQUE INDEX refuses with an
    IntegrityError: named here, with both ways out, before it is reached.
    """
    if "uuid" not in {r[1] for r in con.execute("PRAGMA table_info(runs)")}:
        return  # an older store: _migrate gives every run a fresh one
    found = con.execute(
        "SELECT uuid, group_concat(id) FROM runs WHERE uuid IS NOT NULL GROUP BY uuid HAVING count(*) > 1"
        " ORDER BY min(id) LIMIT 1"
    ).fetchone()
    if found is None:
        return
    uuid, ids = found[0], sorted(int(i) for i in str(found[1]).split(","))
    later = ", ".join(map(str, ids[1:]))
    db = shlex.quote(str(path))
    raise UserError(
        f"{path}: runs {', '.join(map(str, ids))} share the uuid {uuid!r}, a run's identity (one run each). "
        f"If they are one run stored twice, remove the later with sqlite3 {db} "
        f"'DELETE FROM measurements WHERE run_id IN ({later}); DELETE FROM runs WHERE id IN ({later})'; "
        f"if they are different runs, give the later a new identity with sqlite3 {db} "
        f"'UPDATE runs SET uuid = NULL WHERE id IN ({later})' (the next command gives it one); "
        "or move the file aside"
    )


def rows(con: sqlite3.Connection, path: Path) -> None:
    """Every row holds what its columns declare; the first that does not is named with a way out."""
    if (ok := con.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
        raise UserError(f"{path}: the database is damaged (sqlite quick_check: {ok}); move it aside")
    for table, checks in ROWS.items():
        tests = ", ".join(f"COALESCE(({cond}), 0) AS c{i}" for i, (_c, cond, _e) in enumerate(checks))
        every = " AND ".join(f"c{i}" for i in range(len(checks)))
        owner = "run_id" if table == "measurements" else "id"
        bad = con.execute(
            f"SELECT * FROM (SELECT id, {owner} AS owner, {tests} FROM {table}) WHERE NOT ({every}) LIMIT 1"
        ).fetchone()
        if bad is None:
            continue
        i = next(i for i in range(len(checks)) if not bad[2 + i])
        column, _cond, expected = checks[i]
        query = f"SELECT typeof({column}), {column} FROM {table} WHERE id = ?"
        kind, value = con.execute(query, (bad[0],)).fetchone()
        shown = repr(value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "...")
        row, run = bad[0], bad[1]
        if table == "runs" or isinstance(run, int):
            where = f"{table} row {row}" + (f" (run {run})" if table == "measurements" else "")
            what = "the run"
            fix = f"DELETE FROM measurements WHERE run_id = {run}; DELETE FROM runs WHERE id = {run}"
        else:  # a measurement of no run
            where, what, fix = f"{table} row {row}", "the row", f"DELETE FROM measurements WHERE id = {row}"
        raise UserError(
            f"{path}: {where}: {column} holds {kind} {shown}, expected {expected}. "
            f"Remove {what} with sqlite3 {shlex.quote(str(path))} '{fix}', or move the file aside"
        )
