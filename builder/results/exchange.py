"""Moving runs between results databases: `variant results export` / `import`, and the merged summary.

A run travels whole: its identity (uuid), start time, host, profile, command, the environment its
benchmarks ran in (version 2; a version 1 file has none, stored as not recorded) and the machine's
hardware record (version 3; none in a version 1 or 2 file, stored as not recorded), and every
measurement with the variant, hash, source commit, patches, suite, metric, unit, parameters,
repetition, value, direction and note. Text columns are carried byte for byte (params and patches
stay the JSON text they were stored as) and values as JSON numbers, which round-trip a double
exactly, so `variant compare` prints the same table from the imported copy. Importing a run
whose uuid is already there does nothing: merging the same files twice, or a file into the
database it came from, changes nothing. Every field of every file is checked (records.py) before
anything is written, and the import is one transaction.
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
from ..store import results
from . import compare, tables
from .records import MEASUREMENT_KEYS, RUN_KEYS, Run
from .records import run as checked_run

FORMAT = "llama-variants results"
VERSION = 3  # 2: runs carry "env"; 3: and "hardware"
READS = (1, 2, 3)


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
                "env": results.run_env(run),
                "hardware": results.run_hardware(run),
                "measurements": [{k: m[k] for k in MEASUREMENT_KEYS} for m in ms],
            }
        )
    doc = {"format": FORMAT, "version": VERSION, "exported": now_iso(), "runs": runs}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    return len(runs)


def _read(path: Path) -> list[Run]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f'{path}: not a results export (expected "format": "{FORMAT}")')
    version = doc.get("version")
    if isinstance(version, bool) or version not in READS:
        raise UserError(
            f"{path}: results format version {json.dumps(version)}; this tool reads "
            + ", ".join(map(str, READS[:-1]))
            + f" and {READS[-1]}"
        )
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise UserError(f'{path}: "runs": expected a list')
    return [checked_run(path, i, raw, version) for i, raw in enumerate(runs)]


def import_files(con: sqlite3.Connection, paths: list[Path]) -> list[Imported]:
    """Add the runs of every file that are not there yet, in one transaction.

    Every file is read and checked whole before anything is written: a refused file leaves the store
    as it was, whichever file of several it is.
    """
    docs = [(p, _read(p)) for p in paths]
    out = []
    try:
        for path, runs in docs:
            added = measured = skipped = 0
            for run in runs:
                if con.execute("SELECT 1 FROM runs WHERE uuid = ?", (run.uuid,)).fetchone():
                    skipped += 1
                    continue
                cols = (*RUN_KEYS, "env", "hardware")
                cur = con.execute(
                    f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (*run.values(), results.env_text(run.env), results.hardware_text(run.hardware)),
                )
                mcols = ("run_id", *MEASUREMENT_KEYS)
                con.executemany(
                    f"INSERT INTO measurements ({', '.join(mcols)}) VALUES ({', '.join('?' * len(mcols))})",
                    [(cur.lastrowid, *m) for m in run.measurements],
                )
                added += 1
                measured += len(run.measurements)
            out.append(Imported(path, added, measured, skipped))
        con.commit()
    except BaseException:
        con.rollback()
        raise
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
            parts.append(tables.render_single(compare.single_rows(con, base, run["id"]), base, fmt))
        for other in others:
            _, rows = compare.pair_rows(con, base, other, None, run["id"])
            parts.append(tables.render(rows, base, other, fmt))
    return "\n\n".join(parts) + "\n" if parts else "no stored runs\n"
