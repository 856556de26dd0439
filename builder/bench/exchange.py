"""Moving runs between results databases: `variant results export` / `import`, and the merged summary.

A run travels whole: its identity (uuid), start time, host, profile and command, and every
measurement with the variant, hash, source commit, patches, suite, metric, unit, parameters,
repetition, value, direction and note. Text columns are carried byte for byte (params and patches
stay the JSON text they were stored as) and values as JSON numbers, which round-trip a double
exactly, so `variant compare` prints the same table from the imported copy. Importing a run
whose uuid is already there does nothing: merging the same files twice, or a file into the
database it came from, changes nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import now_iso
from ..errors import UserError
from . import compare

FORMAT = "llama-variants results"
VERSION = 1
RUN_KEYS = ("uuid", "started", "host", "profile", "command")
MEASUREMENT_KEYS = (
    "variant",
    "hash",
    "source_commit",
    "patches",
    "suite",
    "metric",
    "unit",
    "params",
    "rep",
    "value",
    "better",
    "note",
    "time",
)


@dataclass(frozen=True)
class Imported:
    file: Path
    runs: int
    measurements: int
    skipped: int  # runs already present (same uuid)


def export(con: sqlite3.Connection, path: Path, run_ids: list[int] | None = None) -> int:
    """Write runs (all, or run_ids) to path as one JSON document; returns how many."""
    known = {row[0] for row in con.execute("SELECT id FROM runs")}
    unknown = sorted(set(run_ids or ()) - known)
    if unknown:
        raise UserError(f"no stored run with id {unknown[0]} (see `variant results list`)")
    wanted = set(run_ids) if run_ids else known
    runs = []
    for run in con.execute("SELECT * FROM runs ORDER BY id").fetchall():
        if run["id"] not in wanted:
            continue
        ms = con.execute("SELECT * FROM measurements WHERE run_id = ? ORDER BY id", (run["id"],))
        runs.append(
            {
                **{k: run[k] for k in RUN_KEYS},
                "measurements": [{k: m[k] for k in MEASUREMENT_KEYS} for m in ms],
            }
        )
    doc = {"format": FORMAT, "version": VERSION, "exported": now_iso(), "runs": runs}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    return len(runs)


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f'{path}: not a results export (expected "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise UserError(f"{path}: results format version {doc.get('version')!r}; this tool reads {VERSION}")
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise UserError(f'{path}: "runs": expected a list')
    for i, run in enumerate(runs):
        where = f"{path}: runs[{i}]"
        if not isinstance(run, dict) or not isinstance(run.get("measurements"), list):
            raise UserError(f'{where}: expected an object with "measurements"')
        for key in RUN_KEYS:
            if not isinstance(run.get(key), str) or (key == "uuid" and not run[key]):
                raise UserError(f"{where}.{key}: expected a string")
        for j, m in enumerate(run["measurements"]):
            missing = [k for k in MEASUREMENT_KEYS if not isinstance(m, dict) or k not in m]
            if missing:
                raise UserError(f"{where}.measurements[{j}]: missing {', '.join(missing)}")
    return runs


def import_files(con: sqlite3.Connection, paths: list[Path]) -> list[Imported]:
    """Add the runs of every file that are not there yet; all files are read before anything is written."""
    docs = [(p, _read(p)) for p in paths]
    out = []
    for path, runs in docs:
        added = measured = skipped = 0
        for run in runs:
            if con.execute("SELECT 1 FROM runs WHERE uuid = ?", (run["uuid"],)).fetchone():
                skipped += 1
                continue
            cur = con.execute(
                f"INSERT INTO runs ({', '.join(RUN_KEYS)}) VALUES ({', '.join('?' * len(RUN_KEYS))})",
                [run[k] for k in RUN_KEYS],
            )
            cols = ("run_id", *MEASUREMENT_KEYS)
            con.executemany(
                f"INSERT INTO measurements ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[cur.lastrowid, *(m[k] for k in MEASUREMENT_KEYS)] for m in run["measurements"]],
            )
            added += 1
            measured += len(run["measurements"])
        out.append(Imported(path, added, measured, skipped))
    con.commit()
    return out


def run_list(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every stored run, oldest first, with the variants it measured (baseline first)."""
    rows = []
    for run in con.execute("SELECT * FROM runs ORDER BY started, id").fetchall():
        variants = [
            r[0]
            for r in con.execute(
                "SELECT variant FROM measurements WHERE run_id = ? GROUP BY variant ORDER BY MIN(id)",
                (run["id"],),
            )
        ]
        count = con.execute("SELECT COUNT(*) FROM measurements WHERE run_id = ?", (run["id"],)).fetchone()
        rows.append(
            {**{k: run[k] for k in ("id", *RUN_KEYS)}, "variants": variants, "measurements": count[0]}
        )
    return rows


def summary(con: sqlite3.Connection, fmt: str = "md") -> str:
    """Every run's tables: each variant against the run's first (its baseline), as `variant compare`."""
    parts = []
    for run in run_list(con):
        if not run["variants"]:
            continue
        base, others = run["variants"][0], run["variants"][1:]
        parts.append(f"### run {run['uuid'][:12]}: `{run['command']}`\n\n{run['host']}, {run['started']}\n")
        if not others:
            parts.append(compare.render_single(compare.single_rows(con, base, run["id"]), base, fmt))
        for other in others:
            _, rows = compare.pair_rows(con, base, other, None, run["id"])
            parts.append(compare.render(rows, base, other, fmt))
    return "\n\n".join(parts) + "\n" if parts else "no stored runs\n"
