"""The results database (.variant/results.sqlite): every measurement, with where it came from."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,     -- local to this database
    started TEXT NOT NULL,
    host TEXT NOT NULL,
    profile TEXT NOT NULL,
    command TEXT NOT NULL,
    uuid TEXT                   -- the run's identity everywhere (export/import); see _migrate
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
CREATE INDEX IF NOT EXISTS m_lookup ON measurements (variant, suite, run_id);
"""
# Created after _migrate, which adds the column to databases made before it existed.
UUID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS runs_uuid ON runs (uuid);"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    con.executescript(SCHEMA)
    _migrate(con)
    try:
        yield con
        con.commit()
    finally:
        con.close()


def _migrate(con: sqlite3.Connection) -> None:
    """Databases from before run identities: add the column and give every old run a uuid."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    if "uuid" not in columns:
        con.execute("ALTER TABLE runs ADD COLUMN uuid TEXT")
    missing = [row[0] for row in con.execute("SELECT id FROM runs WHERE uuid IS NULL")]
    for run_id in missing:
        con.execute("UPDATE runs SET uuid = ? WHERE id = ?", (uuid.uuid4().hex, run_id))
    con.executescript(UUID_INDEX)
    con.commit()


def start_run(con: sqlite3.Connection, profile: str, command: str, *, commit: bool = True) -> int:
    """A new run; commit=False leaves it (and what is recorded after it) to the caller's transaction."""
    cur = con.execute(
        "INSERT INTO runs (started, host, profile, command, uuid) VALUES (?, ?, ?, ?, ?)",
        (now_iso(precise=True), host_description(), profile, command, uuid.uuid4().hex),
    )
    if commit:
        con.commit()
    assert cur.lastrowid is not None
    return cur.lastrowid


def record(
    con: sqlite3.Connection, run_id: int, manifest: dict[str, Any], rep: int, m: Measurement, *,
    commit: bool = True,
) -> None:  # fmt: skip
    patches = [f"{p['series']}/{p['file']}@{p['sha256'][:12]}" for p in manifest.get("patches", [])]
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
            json.dumps(m.params, sort_keys=True),
            rep,
            m.value,
            m.better,
            m.note,
            now_iso(),
        ),
    )
    if commit:
        con.commit()


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
