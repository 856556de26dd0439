"""The results database (.variant/results.sqlite): every measurement, with where it came from."""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import now_iso
from ..errors import UserError
from . import storecheck

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,     -- local to this database
    started TEXT NOT NULL,
    host TEXT NOT NULL,
    profile TEXT NOT NULL,
    command TEXT NOT NULL,
    uuid TEXT,                  -- the run's identity everywhere (export/import); see _migrate
    env TEXT,                   -- JSON object: the benchmarks' environment (environment.py); NULL: unknown
    hardware TEXT               -- JSON object: the machine's record (host/topology.py); NULL: unknown
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    variant TEXT NOT NULL,
    hash TEXT NOT NULL,
    source_commit TEXT NOT NULL,
    patches TEXT NOT NULL,      -- JSON list of "series/file@sha256[:12]"
    suite TEXT NOT NULL,
    metric TEXT NOT NULL,
    unit TEXT NOT NULL,
    params TEXT NOT NULL,       -- JSON object, sorted keys: threads, model, case...
    rep INTEGER NOT NULL,
    value REAL,                 -- NULL when the run did not finish (timeout)
    better TEXT NOT NULL,       -- "lower" or "higher"
    note TEXT NOT NULL DEFAULT '',
    time TEXT NOT NULL
);
"""
# Created once the tables are known to be ours and _migrate added what older ones lack.
INDEXES = """
CREATE INDEX IF NOT EXISTS m_lookup ON measurements (variant, suite, run_id);
CREATE UNIQUE INDEX IF NOT EXISTS runs_uuid ON runs (uuid);
"""
# Errors of a program's (a bug of ours) rather than of the file (not a database, damaged, locked,
# unreadable): they stay tracebacks.
PROGRAM_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError)


# The note of a cell that never ran (the variant cannot run the model's types): value None, never a figure.
SKIPPED = "skipped: "

# Metrics that are facts of a case, not measurements of a variant: the same every repetition (the bytes a
# generated token reads, a prompt token's FLOPs), stored beside the tg and pp rows so the tables can set
# those against the machine's limits (results/share.py). Tables show them in those rows, not as rows.
FACTS = ("bytes_per_token", "flops_per_token")


@dataclass(frozen=True)
class Measurement:
    suite: str
    metric: str
    unit: str
    params: dict[str, Any]
    value: float | None
    note: str = ""
    better: str = "lower"  # or "higher": which way a change is an improvement


def host_description() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} | {cpu or platform.processor()} | {os.cpu_count()} cpus | {platform.release()}"


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """The store, checked whole (storecheck.py) before anything reads it; a bad file is a UserError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: cannot open the results database ({exc})") from None
    con.row_factory = sqlite3.Row
    try:
        try:
            storecheck.tables(con, path)
            con.executescript(SCHEMA)
            storecheck.columns(con, path)
            storecheck.uuids(con, path)
            _migrate(con)
            con.executescript(INDEXES)
            storecheck.rows(con, path)
            yield con
            con.commit()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, PROGRAM_ERRORS):
                raise
            way_out = "" if "locked" in str(exc) else " (not a readable results database; move it aside)"
            raise UserError(f"{path}: {exc}{way_out}") from None
    finally:
        con.close()


def _migrate(con: sqlite3.Connection) -> None:
    """Older stores: a uuid for every run (from before run identities); env and hardware NULL (unrecorded)."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    if "uuid" not in columns:
        con.execute("ALTER TABLE runs ADD COLUMN uuid TEXT")
    if "env" not in columns:
        con.execute("ALTER TABLE runs ADD COLUMN env TEXT")
    if "hardware" not in columns:
        con.execute("ALTER TABLE runs ADD COLUMN hardware TEXT")
    missing = [row[0] for row in con.execute("SELECT id FROM runs WHERE uuid IS NULL")]
    for run_id in missing:
        con.execute("UPDATE runs SET uuid = ? WHERE id = ?", (uuid.uuid4().hex, run_id))
    con.commit()


def start_run(
    con: sqlite3.Connection, profile: str, command: str, *, env: Mapping[str, str] | None = None,
    hardware: Mapping[str, Any] | None = None, commit: bool = True,
) -> int:  # fmt: skip
    """A new run; commit=False leaves it (and what is recorded after it) to the caller's transaction.

    env: the benchmarks' recorded environment (environment.recorded); None stores "not recorded".
    hardware: the machine's record (topology.hardware); None stores "not recorded". One the store
    cannot hold (storecheck.hardware_json) is a storecheck.NotHardware, a ValueError: a program's bug.
    """
    cur = con.execute(
        "INSERT INTO runs (started, host, profile, command, uuid, env, hardware)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            now_iso(precise=True), host_description(), profile, command, uuid.uuid4().hex, env_text(env),
            hardware_text(hardware),
        ),
    )  # fmt: skip
    if commit:
        con.commit()
    assert cur.lastrowid is not None
    return cur.lastrowid


def discard_run(con: sqlite3.Connection, run_id: int) -> None:
    """Forget a run that stopped on bad input, with what it had recorded."""
    con.execute("DELETE FROM measurements WHERE run_id = ?", (run_id,))
    con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    con.commit()


def record(
    con: sqlite3.Connection, run_id: int, manifest: dict[str, Any], rep: int, m: Measurement, *,
    commit: bool = True,
) -> None:  # fmt: skip
    patches = [f"{p['series']}/{p['file']}@{p['sha256'][:12]}" for p in manifest.get("patches", [])]
    if m.value is not None and not math.isfinite(m.value):  # storecheck would refuse the store after it
        raise ValueError(f"{m.suite} {m.metric}: {m.value} is not a measurement")
    con.execute(
        "INSERT INTO measurements (run_id, variant, hash, source_commit, patches, suite, metric, unit,"
        " params, rep, value, better, note, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            manifest["variant"],
            manifest["hash"],
            manifest["source"]["commit"],
            json.dumps(patches),
            m.suite,
            m.metric,
            m.unit,
            json.dumps(m.params, sort_keys=True, allow_nan=False),
            rep,
            m.value,
            m.better,
            m.note,
            now_iso(),
        ),
    )
    if commit:
        con.commit()


def env_text(env: Mapping[str, str] | None) -> str | None:
    """How runs.env holds a recorded environment: JSON, sorted by name."""
    return None if env is None else json.dumps(dict(sorted(env.items())))


def run_env(run: sqlite3.Row | Mapping[str, Any]) -> dict[str, str] | None:
    """A stored run's environment (None: not recorded); storecheck made sure it is an object of text."""
    text = run["env"]
    return None if text is None else dict(json.loads(text))


def hardware_text(hardware: Mapping[str, Any] | None) -> str | None:
    """How runs.hardware holds a machine's record: JSON, checked (storecheck.hardware_json)."""
    return None if hardware is None else storecheck.hardware_json(hardware)


def run_hardware(run: sqlite3.Row | Mapping[str, Any]) -> dict[str, Any] | None:
    """A stored run's hardware record (None: not recorded); storecheck made sure it is an object."""
    text = run["hardware"]
    return None if text is None else dict(json.loads(text))


PROFILED = "profile"  # the suite of `variant profile`'s rows: numbers taken under a profiler


def latest_run_with(con: sqlite3.Connection, variants: list[str], suite: str | None) -> int | None:
    """The newest run that measured every one of variants (in suite, if given).

    Without a suite, profiling runs do not count: their numbers were taken under perf or uftrace,
    and `variant report A B` means the newest benchmark (a profile run is asked for by --run).
    """
    query = "SELECT run_id FROM measurements WHERE variant = ?" + (
        " AND suite = ?" if suite else f" AND suite != '{PROFILED}'"
    )
    common: set[int] | None = None
    for v in variants:
        args: tuple[str, ...] = (v, suite) if suite else (v,)
        ids = {row[0] for row in con.execute(query, args)}
        common = ids if common is None else common & ids
    if not common:
        return None
    # By start time, not by local id: runs imported from other machines get ids in import order.
    marks = ",".join("?" * len(common))
    row = con.execute(
        f"SELECT id FROM runs WHERE id IN ({marks}) ORDER BY started DESC, id DESC LIMIT 1", sorted(common)
    ).fetchone()
    return int(row[0]) if row else max(common)


def rows(con: sqlite3.Connection, run_id: int, variants: list[str], suite: str | None) -> list[sqlite3.Row]:
    marks = ",".join("?" * len(variants))
    query = f"SELECT * FROM measurements WHERE run_id = ? AND variant IN ({marks})"
    args: list[Any] = [run_id, *variants]
    if suite:
        query += " AND suite = ?"
        args.append(suite)
    return list(con.execute(query + " ORDER BY suite, metric, params, rep, variant", args))
