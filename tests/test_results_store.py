"""The results store (results.sqlite): a damaged, foreign or inconsistent store is refused by every reader."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.store import results, storecheck

from .conftest import Catalogue, Outcome
from .test_results_report import QUESTIONS, _db


def _cli(run: Callable[..., Outcome], root: Path, tmp_path: Path) -> dict[str, Outcome]:
    """Every command that reads the store."""
    return {
        "summary": run(root, "results", "summary"),
        "list": run(root, "results", "list"),
        "export": run(root, "results", "export", str(tmp_path / "out.json")),
        "compare": run(root, "compare", "a", "b"),
        "report": run(root, "report", "a", "b", "--out", str(tmp_path / "report")),
        "questions": run(root, "report", "--questions", "--out", str(tmp_path / "report")),
    }


def test_a_corrupt_store_is_exit_2_naming_the_file_and_left_as_it_was(
    catalogue: Catalogue, run: Callable[..., Outcome], tmp_path: Path
) -> None:
    db = catalogue.home / "results.sqlite"
    db.parent.mkdir(parents=True)
    (catalogue.root / "questions.toml").write_text(QUESTIONS)
    garbage = bytes(range(256)) * 64
    for damaged in (garbage, b"SQLite format 3\0" + garbage):  # not a database; a header and then garbage
        db.write_bytes(damaged)
        for command, res in _cli(run, catalogue.root, tmp_path).items():
            assert res.code == 2, (command, res.out + res.err)
            assert res.err.startswith(f"error: {db}: ") and "move it aside" in res.err, (
                command,
                res.out + res.err,
            )
            assert "Traceback" not in res.err
        assert db.read_bytes() == damaged
    assert not (tmp_path / "out.json").exists()


def _sqlite(db: Path, script: str) -> None:
    con = sqlite3.connect(db)
    try:
        con.executescript(script)
        con.commit()
    finally:
        con.close()


def test_a_store_of_another_schema_or_with_rows_of_the_wrong_type_is_refused_by_every_reader(
    catalogue: Catalogue, run: Callable[..., Outcome], tmp_path: Path
) -> None:
    db = catalogue.home / "results.sqlite"
    db.parent.mkdir(parents=True)
    (catalogue.root / "questions.toml").write_text(QUESTIONS)

    def refused(said: str) -> str:
        before = db.read_bytes()
        for command, res in _cli(run, catalogue.root, tmp_path).items():
            assert res.code == 2 and f"error: {db}: " in res.err and said in res.err, (
                command,
                res.out + res.err,
            )
        assert db.read_bytes() == before  # nothing created, migrated or fixed in it
        return res.err

    # another program's database: not ours, and none of our tables is added to it
    _sqlite(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
    refused("not a results database of this tool (it holds table users;")
    # our tables, with a column of another type, without one, with one of someone else's
    for ours, theirs, said in (
        (
            "value REAL,",
            "value TEXT,",
            "table measurements is not this tool's: column value is TEXT, expected REAL",
        ),
        ("command TEXT NOT NULL,", "", "table runs is not this tool's: it has no column command"),
        (
            "rep INTEGER NOT NULL,",
            "rep INTEGER, speed REAL,",
            "it has a column speed this tool does not know",
        ),
    ):
        db.unlink()
        assert ours in results.SCHEMA
        _sqlite(db, results.SCHEMA.replace(ours, theirs))
        refused(said)

    # rows of the wrong type in a store of ours (an older tool's import stored "fast"): the row,
    # its run, the column and what it holds are named, with the statement that removes the run
    env = "'{\"OMP_NUM_THREADS\": 1}'"
    for change, said in (
        (
            "UPDATE measurements SET value = 'fast' WHERE id = 3",
            "measurements row 3 (run 1): value holds text 'fast', expected a finite number or null",
        ),
        (
            "UPDATE measurements SET value = 9e999 WHERE id = 2",
            "value holds real inf, expected a finite number",
        ),
        (
            "UPDATE measurements SET rep = 'one' WHERE id = 2",
            "rep holds text 'one', expected an integer >= 0",
        ),
        ("UPDATE measurements SET rep = 1.5 WHERE id = 2", "rep holds real 1.5, expected an integer >= 0"),
        (
            "UPDATE measurements SET params = 'threads=2' WHERE id = 4",
            "measurements row 4 (run 1): params holds text 'threads=2', expected a JSON object",
        ),
        ("UPDATE measurements SET patches = '[\"s/x\", 1]' WHERE id = 4", "expected a JSON array of text"),
        (
            "UPDATE measurements SET better = 'faster' WHERE id = 5",
            'better holds text \'faster\', expected text "lower" or "higher"',
        ),
        (
            "UPDATE measurements SET variant = x'00ff' WHERE id = 5",
            "variant holds blob b'\\x00\\xff', expected text",
        ),
        (
            f"UPDATE runs SET env = {env} WHERE id = 1",
            f"runs row 1: env holds text {env}, expected null or a JSON object of text values",
        ),
        (
            "UPDATE measurements SET run_id = 7 WHERE id = 6",
            "measurements row 6 (run 7): run_id holds integer 7, expected the id of a stored run",
        ),
    ):
        db.unlink()
        shutil.copy(_db(tmp_path / change[:30].replace(" ", "_")), db)
        _sqlite(db, change)
        err = refused(said)
        # the way out it names works: the rest of the store reads again
        _sqlite(db, err.split(f"sqlite3 {db} '")[1].split("'")[0])
        res = run(catalogue.root, "results", "summary")
        assert res.code == 0, res.out + res.err


def test_a_store_holding_a_run_twice_without_its_unique_index_is_refused_with_both_ways_out(
    catalogue: Catalogue, run: Callable[..., Outcome], tmp_path: Path
) -> None:
    """CREATE UNIQUE INDEX runs_uuid stopped on it with an IntegrityError: a traceback, on every call."""
    db = catalogue.home / "results.sqlite"
    db.parent.mkdir(parents=True)
    (catalogue.root / "questions.toml").write_text(QUESTIONS)
    columns = "started, host, profile, command, uuid, env"
    copy = f"INSERT INTO runs ({columns}) SELECT {columns} FROM runs WHERE id = 1"
    for way_out in ("DELETE", "UPDATE"):
        db.unlink(missing_ok=True)
        shutil.copy(_db(tmp_path / way_out), db)
        _sqlite(db, f"DROP INDEX runs_uuid; {copy};")
        con = sqlite3.connect(db)
        (uuid,) = con.execute("SELECT uuid FROM runs WHERE id = 2").fetchone()
        con.close()
        before = db.read_bytes()
        for command, res in _cli(run, catalogue.root, tmp_path).items():
            assert res.code == 2, (command, res.out + res.err)
            assert f"error: {db}: runs 1, 2 share the uuid '{uuid}'" in res.err, (command, res.out + res.err)
            assert "Traceback" not in res.err and "or move the file aside" in res.err
        assert db.read_bytes() == before
        # each way out it names works: the run stored twice removed, or given an identity of its own
        (statement,) = [s for s in res.err.split(f"sqlite3 {db} '")[1:] if s.startswith(way_out)]
        _sqlite(db, statement.split("'")[0])
        res = run(catalogue.root, "results", "list", "--json")
        assert res.code == 0, res.out + res.err
        uuids = [r["uuid"] for r in json.loads(res.out)]
        assert len(uuids) == len(set(uuids)) == (1 if way_out == "DELETE" else 2)


# A record as host/topology.py's hardware() writes one: two sockets, a model on NVMe, one on tmpfs.
HARDWARE: dict[str, Any] = {
    "sockets": 2,
    "numa_nodes": [
        {"id": 0, "cpus": "0-7,16-23", "physical_cores": 8, "memory_bytes": 34359738368},
        {"id": 1, "cpus": "8-15,24-31", "physical_cores": 8, "memory_bytes": 33822867456},
    ],
    "physical_cores": 16,
    "logical_cpus": 32,
    "hugepage_sizes_kb": [2048, 1048576],
    "thp": "madvise",
    "mem_available_bytes": 60129542144,
    "storage": {
        "model.gguf": {
            "fstype": "ext4", "mount_point": "/srv", "source": "/dev/nvme0n1p2", "device": "nvme0n1p2",
            "disk": "nvme0n1", "backing_file": None, "rotational": False,
        },
        "tiny.gguf": {
            "fstype": "tmpfs", "mount_point": "/dev/shm", "source": "tmpfs", "device": None, "disk": None,
            "backing_file": None, "rotational": None,
        },
    },
}  # fmt: skip


def test_an_older_store_gets_the_hardware_column_and_new_runs_record_theirs(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    # the runs table before hardware records, with a run of its own
    _sqlite(
        db,
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, host TEXT NOT NULL,"
        " profile TEXT NOT NULL, command TEXT NOT NULL, uuid TEXT, env TEXT);"
        "INSERT INTO runs (started, host, profile, command, uuid, env)"
        " VALUES ('2026-01-01T00:00:00+0000', 'h', 'p', 'c', 'u1', '{\"LC_ALL\": \"C\"}');",
    )
    with results.connect(db) as con:
        assert "hardware" in {r[1] for r in con.execute("PRAGMA table_info(runs)")}
        old = con.execute("SELECT * FROM runs WHERE uuid = 'u1'").fetchone()
        assert results.run_hardware(old) is None and results.run_env(old) == {"LC_ALL": "C"}
        new = results.start_run(con, "default", "variant bench a", hardware=HARDWARE)
        plain = results.start_run(con, "default", "variant bench a")
    with results.connect(db) as con:  # read back through the checks a reopened store passes
        got = {r["id"]: results.run_hardware(r) for r in con.execute("SELECT * FROM runs")}
    assert got == {1: None, new: HARDWARE, plain: None}
    assert list(got[new] or {}) == list(HARDWARE)  # kept in the order it was written


def test_start_run_refuses_a_hardware_record_the_store_could_not_export(tmp_path: Path) -> None:
    """A program's bug (the record's writer), not the user's: a ValueError naming where in the record."""
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": 1}}}}  # four objects: the deepest allowed
    for record, said in (
        ({"thp": math.nan}, "hardware.thp: expected a finite number, got nan"),
        ({"storage": {"m.gguf": {"size": math.inf}}}, "hardware.storage.m.gguf.size: expected a finite"),
        ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "hardware.a.b.c.d: nested deeper than 4 objects and lists"),
        ({"n": [[[[1]]]]}, "hardware.n[0][0][0]: nested deeper than 4"),
        ({"numa_nodes": {0: "0-3"}}, "hardware.numa_nodes: expected keys of Unicode text, got 0"),
        ({"thp": "\udc80"}, "hardware.thp: expected text of Unicode characters"),
        ({"cpus": {1, 2}}, "hardware.cpus: expected text, a number, true/false or null, got set"),
        ({"storage": {f"m{i}.gguf": "x" * 100 for i in range(700)}}, "bytes of JSON, expected at most 65536"),
    ):
        with pytest.raises(storecheck.NotHardware) as caught, results.connect(tmp_path / "r.sqlite") as con:
            results.start_run(con, "default", "variant bench a", hardware=record)
        assert said in str(caught.value), record
        assert isinstance(caught.value, ValueError)
    with results.connect(tmp_path / "r.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0  # nothing half-stored
        # the limits themselves are allowed; tuples are stored as the lists JSON has
        run_id = results.start_run(con, "default", "c", hardware={**deep, "sizes": (2048,)})
        row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        assert results.run_hardware(row) == {**deep, "sizes": [2048]}


def test_a_store_whose_hardware_is_not_an_object_is_refused_by_every_reader(
    catalogue: Catalogue, run: Callable[..., Outcome], tmp_path: Path
) -> None:
    db = catalogue.home / "results.sqlite"
    db.parent.mkdir(parents=True)
    (catalogue.root / "questions.toml").write_text(QUESTIONS)
    for i, (value, said) in enumerate((
        ("'[1, 2]'", "hardware holds text '[1, 2]'"),
        ("'sockets=2'", "hardware holds text 'sockets=2'"),
        ("'{\"thp\": NaN}'", "hardware holds text '{\"thp\": NaN}'"),
        ("2", "hardware holds text '2'"),  # the column's TEXT affinity stores the number as text
        ("x'7b7d'", "hardware holds blob b'{}'"),
    )):  # fmt: skip
        db.unlink(missing_ok=True)
        shutil.copy(_db(tmp_path / f"case{i}"), db)
        _sqlite(db, f"UPDATE runs SET hardware = {value} WHERE id = 1")
        before = db.read_bytes()
        expected = f"error: {db}: runs row 1: {said}, expected null or a JSON object (the machine's record)"
        for command, res in _cli(run, catalogue.root, tmp_path).items():
            assert res.code == 2 and expected in res.err, (command, res.out + res.err)
            assert "Traceback" not in res.err
        assert db.read_bytes() == before
        # the way out it names works
        _sqlite(db, res.err.split(f"sqlite3 {db} '")[1].split("'")[0])
        res = run(catalogue.root, "results", "summary")
        assert res.code == 0, res.out + res.err
    # an object is what the column holds: the store reads
    shutil.copy(_db(tmp_path / "object"), db)
    _sqlite(db, "UPDATE runs SET hardware = '{\"sockets\": 1}' WHERE id = 1")
    res = run(catalogue.root, "results", "summary")
    assert res.code == 0, res.out + res.err
