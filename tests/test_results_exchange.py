"""`variant results export` / `import`: runs move between catalogues whole, once, and compare the same."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.results.hardware import hardware_lines
from builder.store import results

from .conftest import REPO, Catalogue, Outcome, write_sources
from .test_results_store import HARDWARE

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


def _other_catalogue(cat: Catalogue, root: Path) -> Path:
    (root / "variants").mkdir(parents=True)
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    write_sources(root, str(cat.upstream.path), cat.upstream.commit)
    return root


def _runs(doc_path: Path) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(doc_path.read_text())["runs"]
    return runs


def test_export_import_moves_runs_losslessly_once(catalogue: Catalogue, run: Run, tmp_path: Path) -> None:
    catalogue.variant("a", TARGETS)
    catalogue.variant("b", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    res = run(catalogue.root, "build", "a", "b")
    assert res.code == 0, res.out + res.err
    res = run(catalogue.root, "bench", "a", "b", "--suite", "barrier", "--reps", "3", "--threads", "1")
    assert res.code == 0, res.out + res.err
    first = tmp_path / "first.json"
    res = run(catalogue.root, "results", "export", str(first))
    assert res.code == 0 and "exported 1 run(s)" in res.err, res.out + res.err

    other = _other_catalogue(catalogue, tmp_path / "other")
    # the other catalogue has its own history: imported runs get other local ids
    with results.connect(other / ".variant" / "results.sqlite") as con:
        results.start_run(con, "default", "variant bench x")
    res = run(other, "results", "import", str(first))
    assert res.code == 0 and "1 run(s) imported (12 measurements), 0 already here" in res.out, (
        res.out + res.err
    )
    here = run(catalogue.root, "compare", "a", "b")
    there = run(other, "compare", "a", "b")
    assert here.code == 0, here.out + here.err
    assert there.code == 0, there.out + there.err
    assert here.out == there.out and "| barrier | ns_per_node" in here.out
    for fmt in ("json", "csv"):
        assert (
            run(catalogue.root, "compare", "a", "b", "--format", fmt).out
            == run(other, "compare", "a", "b", "--format", fmt).out
        )

    # a second run; everything is exported again: only the new run is added
    res = run(catalogue.root, "bench", "b", "a", "--suite", "barrier", "--reps", "2", "--threads", "1")
    assert res.code == 0, res.out + res.err
    both = tmp_path / "both.json"
    res = run(catalogue.root, "results", "export", str(both))
    assert res.code == 0, res.out + res.err
    res = run(other, "results", "import", str(both), str(first))
    assert res.code == 0, res.out + res.err
    assert f"{both}: 1 run(s) imported (8 measurements), 1 already here" in res.out
    assert f"{first}: 0 run(s) imported (0 measurements), 1 already here" in res.out
    assert run(catalogue.root, "compare", "a", "b").out == run(other, "compare", "a", "b").out
    # the report job's tables: the other catalogue's own run measured nothing and has none
    assert run(catalogue.root, "results", "summary").out == run(other, "results", "summary").out

    # imported in the other order (the newer run first): "newest" still means the newer run
    third = _other_catalogue(catalogue, tmp_path / "third")
    newer = tmp_path / "newer.json"
    res = run(catalogue.root, "results", "export", str(newer), "--run", "2")
    assert res.code == 0, res.out + res.err
    res = run(third, "results", "import", str(newer))
    assert res.code == 0, res.out + res.err
    res = run(third, "results", "import", str(first))
    assert res.code == 0, res.out + res.err
    assert run(third, "compare", "a", "b").out == run(catalogue.root, "compare", "a", "b").out

    # what comes back out is what went in, byte for byte (the export's own time aside)
    back = tmp_path / "back.json"
    ids = [r["id"] for r in json.loads(run(other, "results", "list", "--json").out) if r["measurements"]]
    res = run(other, "results", "export", str(back), *(a for i in ids for a in ("--run", str(i))))
    assert res.code == 0, res.out + res.err
    assert _runs(back) == _runs(both)


def test_summary_shows_every_run_against_its_first_variant(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("a", TARGETS)
    catalogue.variant("b", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    res = run(catalogue.root, "build", "a", "b")
    assert res.code == 0, res.out + res.err
    res = run(catalogue.root, "bench", "a", "b", "--suite", "barrier", "--reps", "2")
    assert res.code == 0, res.out + res.err
    res = run(catalogue.root, "bench", "b", "--suite", "barrier", "--reps", "2")
    assert res.code == 0, res.out + res.err
    out = run(catalogue.root, "results", "summary").out
    assert out.count("### run ") == 2
    assert "| suite | metric | case | a | b | speedup | verdict |" in out
    assert "| suite | metric | case | b |" in out
    assert "`variant bench" in out


def test_old_databases_get_run_ids_and_bad_files_change_nothing(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    empty = run(catalogue.root, "results", "list")  # before any run: said, not a silent blank
    assert empty.code == 0 and empty.out == "" and "no runs stored in" in empty.err, empty.out + empty.err
    db = catalogue.home / "results.sqlite"
    db.unlink()  # the listing made an empty one; this test needs the old schema
    con = sqlite3.connect(db)
    # the schema before run identities
    con.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, host TEXT NOT NULL,"
        " profile TEXT NOT NULL, command TEXT NOT NULL);"
        "INSERT INTO runs (started, host, profile, command)"
        " VALUES ('2026-01-01T00:00:00+0000', 'h', 'p', 'c'), ('2026-01-02T00:00:00+0000', 'h', 'p', 'c');"
    )
    con.commit()
    con.close()
    listed = json.loads(run(catalogue.root, "results", "list", "--json").out)
    uuids = [r["uuid"] for r in listed]
    assert len(uuids) == 2 and len(set(uuids)) == 2 and all(len(u) == 32 for u in uuids)
    assert [r["uuid"] for r in json.loads(run(catalogue.root, "results", "list", "--json").out)] == uuids

    good = tmp_path / "good.json"
    res = run(catalogue.root, "results", "export", str(good))
    assert res.code == 0, res.out + res.err
    bad = tmp_path / "bad.json"
    doc = json.loads(good.read_text())
    doc["runs"][0]["uuid"] = "f" * 32
    doc["runs"][1]["measurements"] = [{"variant": "x"}]
    bad.write_text(json.dumps(doc))
    res = run(catalogue.root, "results", "import", str(bad))
    assert res.code == 2 and "runs[1].measurements[0]: missing hash" in res.err, res.out + res.err
    res = run(catalogue.root, "results", "import", str(tmp_path / "nope.json"))
    assert res.code == 2 and "cannot read" in res.err, res.out + res.err
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    res = run(catalogue.root, "results", "import", str(tmp_path / "other.json"))
    assert res.code == 2 and "not a results export" in res.err, res.out + res.err
    assert len(json.loads(run(catalogue.root, "results", "list", "--json").out)) == 2
    res = run(catalogue.root, "results", "export", str(good), "--run", "7")
    assert res.code == 2 and "no stored run with id 7" in res.err, res.out + res.err


def _store(db: Path) -> None:
    """Two runs without a bench (the fields the import checks do not need a build)."""
    with results.connect(db) as con:
        for env in ({"LC_ALL": "C", "OMP_NUM_THREADS": "2"}, None):
            run_id = results.start_run(con, "default", "variant bench a b", env=env)
            for rep, (a, b) in enumerate([(100.0, 50.0), (90.0, 48.0)]):
                for name, value in (("a", a), ("b", b)):
                    manifest = {"variant": name, "hash": "h" * 64, "source": {"commit": "c" * 40}}
                    m = results.Measurement("barrier", "ns_per_node", "ns", {"threads": 2}, value)
                    results.record(con, run_id, manifest, rep, m)


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


# (where, hostile value, what the error says after the field): the values of issue 28 and their kin.
M0 = ("runs", 0, "measurements", 0)
HOSTILE: list[tuple[tuple[object, ...], object, str]] = [
    ((*M0, "variant"), None, ".measurements[0].variant: expected a string, got null"),
    ((*M0, "params"), {"threads": 2}, '.params: expected a string holding a JSON object, got {"threads": 2}'),
    ((*M0, "rep"), 10**40, ".rep: expected an integer from 0 to 9223372036854775807 (SQLite's 64-bit range)"),
    ((*M0, "rep"), True, ".rep: expected an integer, got true"),
    ((*M0, "rep"), 1.5, ".rep: expected an integer, got 1.5"),
    ((*M0, "rep"), -1, ".rep: expected an integer from 0"),
    ((*M0, "value"), "fast", '.value: expected a finite number or null, got "fast"'),
    ((*M0, "value"), float("nan"), ".value: expected a finite number or null, got nan"),
    ((*M0, "value"), float("inf"), ".value: expected a finite number or null, got inf"),
    ((*M0, "value"), float("-inf"), ".value: expected a finite number or null, got -inf"),
    ((*M0, "value"), 10**400, ".value: expected a finite number or null, got an integer beyond any double"),
    ((*M0, "value"), False, ".value: expected a finite number or null, got false"),
    ((*M0, "value"), [1.0], ".value: expected a finite number or null, got [1.0]"),
    ((*M0, "better"), "faster", '.better: expected "lower" or "higher", got "faster"'),
    ((*M0, "better"), None, '.better: expected "lower" or "higher", got null'),
    ((*M0, "params"), '{"threads": NaN}', "(JSON has no NaN)"),
    ((*M0, "params"), "[2]", '.params: expected a string holding a JSON object, got "[2]"'),
    ((*M0, "params"), "{not json", ".params: expected a string holding a JSON object"),
    (
        (*M0, "patches"),
        ["s/0001.patch"],
        '.patches: expected a string holding a JSON array of strings, got ["s/',
    ),
    ((*M0, "patches"), "[1]", ".patches: expected a string holding a JSON array of strings"),
    ((*M0, "note"), "\ud800", ".note: expected a string of Unicode characters"),
    ((*M0, "unit"), {"ns": 1}, '.unit: expected a string, got {"ns": 1}'),
    ((*M0, "speed"), 1, ".measurements[0]: unknown key speed"),
    (M0, [], ".measurements[0]: expected an object (a measurement), got []"),
    (("runs", 0, "measurements"), {}, ".measurements: expected a list, got {}"),
    (("runs", 0, "host"), 5, "runs[0].host: expected a string, got 5"),
    (("runs", 0, "uuid"), "", "runs[0].uuid: expected a non-empty string"),
    (("runs", 0, "env"), {"OMP_NUM_THREADS": 1}, "runs[0].env: expected a string for OMP_NUM_THREADS, got 1"),
    (("runs", 0, "env"), {"OMP NUM": "1"}, "runs[0].env: expected variable names of letters, digits and _"),
    (("runs", 0, "env"), ["LC_ALL=C"], "runs[0].env: expected an object of NAME: VALUE strings, or null"),
    (("runs", 0), "run", 'runs[0]: expected an object (a run), got "run"'),
    (("version",), True, "results format version true; this tool reads 1, 2 and 3"),
]


def _set(doc: dict[str, Any], where: tuple[object, ...], value: object) -> None:
    *path, last = where
    node: Any = doc
    for key in path:
        node = node[key]
    node[last] = value


def test_import_refuses_every_hostile_field_naming_it_and_stores_nothing(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _store(catalogue.home / "results.sqlite")
    good = tmp_path / "good.json"
    res = run(catalogue.root, "results", "export", str(good))
    assert res.code == 0, res.out + res.err
    other = _other_catalogue(catalogue, tmp_path / "other")
    db = other / ".variant" / "results.sqlite"
    _store(db)  # runs of its own: a refused import must leave them exactly so
    before = _dump(db)
    summary = run(other, "results", "summary").out
    uuid = json.loads(good.read_text())["runs"][0]["uuid"]
    for where, value, said in HOSTILE:
        doc = json.loads(good.read_text())
        _set(doc, where, value)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(doc))  # NaN and Infinity as Python writes (and reads) them
        # the good file first: nothing of it is stored either
        res = run(other, "results", "import", str(good), str(bad))
        assert res.code == 2, (where, value, res.out + res.err)
        assert f"error: {bad}: " in res.err and said in res.err, (where, value, res.out + res.err)
        if where[:2] == ("runs", 0) and where[2:] != ("uuid",) and len(where) > 2:
            assert f'(run "{uuid}")' in res.err  # the run, by its identity
        assert _dump(db) == before, (where, value)
    # the store still reads: no stored "fast" for compare and summary to trip on
    res = run(other, "results", "summary")
    assert res.code == 0 and res.out == summary, res.out + res.err


def test_runs_carry_their_environment_and_version_1_files_still_import(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _store(catalogue.home / "results.sqlite")
    exported = tmp_path / "v2.json"
    res = run(catalogue.root, "results", "export", str(exported))
    assert res.code == 0, res.out + res.err
    doc = json.loads(exported.read_text())
    assert doc["version"] == 3
    assert [r["env"] for r in doc["runs"]] == [{"LC_ALL": "C", "OMP_NUM_THREADS": "2"}, None]
    other = _other_catalogue(catalogue, tmp_path / "other")
    res = run(other, "results", "import", str(exported))
    assert res.code == 0, res.out + res.err
    back = tmp_path / "back.json"
    res = run(other, "results", "export", str(back))
    assert res.code == 0, res.out + res.err
    assert _runs(back) == _runs(exported)

    # a file of the first format: runs without "env", stored as not recorded
    v1 = {
        **doc,
        "version": 1,
        "runs": [{k: v for k, v in r.items() if k not in ("env", "hardware")} for r in doc["runs"]],
    }
    for r in v1["runs"]:
        r["uuid"] = r["uuid"][::-1]  # other runs than the ones already there
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(v1))
    third = _other_catalogue(catalogue, tmp_path / "third")
    res = run(third, "results", "import", str(old))
    assert res.code == 0 and "2 run(s) imported (8 measurements)" in res.out, res.out + res.err
    res = run(third, "results", "export", str(back))
    assert res.code == 0, res.out + res.err
    assert [r["env"] for r in _runs(back)] == [None, None]
    # "env" belongs to version 2: in a version 1 file it is a key this tool does not know
    v1["runs"][0]["env"] = {}
    old.write_text(json.dumps(v1))
    res = run(other, "results", "import", str(old))
    assert res.code == 2 and "runs[0]: unknown key env" in res.err, res.out + res.err


def _store_hardware(db: Path) -> None:
    """Two runs with a measurement each: one with the machine's record, one without."""
    with results.connect(db) as con:
        for hardware in (HARDWARE, None):
            run_id = results.start_run(
                con, "default", "variant bench a", env={"LC_ALL": "C"}, hardware=hardware
            )
            manifest = {"variant": "a", "hash": "h" * 64, "source": {"commit": "c" * 40}}
            results.record(con, run_id, manifest, 0, results.Measurement("barrier", "ns", "ns", {}, 1.0))


def _stored_hardware(db: Path) -> list[dict[str, Any] | None]:
    with results.connect(db) as con:
        return [results.run_hardware(r) for r in con.execute("SELECT * FROM runs ORDER BY started, id")]


def test_runs_carry_their_hardware_and_version_2_files_still_import(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _store_hardware(catalogue.home / "results.sqlite")
    exported = tmp_path / "v3.json"
    res = run(catalogue.root, "results", "export", str(exported))
    assert res.code == 0, res.out + res.err
    doc = json.loads(exported.read_text())
    assert doc["version"] == 3 and [r["hardware"] for r in doc["runs"]] == [HARDWARE, None]
    other = _other_catalogue(catalogue, tmp_path / "other")
    res = run(other, "results", "import", str(exported))
    assert res.code == 0 and "2 run(s) imported" in res.out, res.out + res.err
    assert _stored_hardware(other / ".variant" / "results.sqlite") == [HARDWARE, None]
    back = tmp_path / "back.json"
    res = run(other, "results", "export", str(back))
    assert res.code == 0, res.out + res.err
    assert _runs(back) == _runs(exported)

    # a file of the second format: runs with "env" and without "hardware", stored as not recorded
    v2 = {**doc, "version": 2, "runs": [{k: v for k, v in r.items() if k != "hardware"} for r in doc["runs"]]}
    for r in v2["runs"]:
        r["uuid"] = r["uuid"][::-1]  # other runs than the ones already there
    old = tmp_path / "v2.json"
    old.write_text(json.dumps(v2))
    third = _other_catalogue(catalogue, tmp_path / "third")
    res = run(third, "results", "import", str(old))
    assert res.code == 0 and "2 run(s) imported (2 measurements)" in res.out, res.out + res.err
    assert _stored_hardware(third / ".variant" / "results.sqlite") == [None, None]
    res = run(third, "results", "export", str(back))
    assert res.code == 0, res.out + res.err
    assert [(r["env"], r["hardware"]) for r in _runs(back)] == [({"LC_ALL": "C"}, None)] * 2
    # "hardware" belongs to version 3: in a version 2 file it is a key this tool does not know
    v2["runs"][0]["hardware"] = HARDWARE
    old.write_text(json.dumps(v2))
    res = run(other, "results", "import", str(old))
    assert res.code == 2 and f"{old}: runs[0]: unknown key hardware" in res.err, res.out + res.err


# (hardware value, what the error says): what the store would refuse, or could not show or export again.
BAD_HARDWARE: list[tuple[object, str]] = [
    ([HARDWARE], "runs[0].hardware: expected an object (the machine's record), or null, got [{"),
    ("2 sockets", 'runs[0].hardware: expected an object (the machine\'s record), or null, got "2 sockets"'),
    ({"thp": float("nan")}, "runs[0].hardware.thp: expected a finite number, got nan"),
    (
        {"storage": {"m.gguf": {"size": float("-inf")}}},
        "runs[0].hardware.storage.m.gguf.size: expected a finite",
    ),
    ({"a": {"b": {"c": {"d": {}}}}}, "runs[0].hardware.a.b.c.d: nested deeper than 4 objects and lists"),
    ({"numa_nodes": [[[[0]]]]}, "runs[0].hardware.numa_nodes[0][0][0]: nested deeper than 4"),
    ({"\ud800": 1}, "runs[0].hardware: expected keys of Unicode text, got '\\ud800'"),
    ({"thp": "\udc80"}, "runs[0].hardware.thp: expected text of Unicode characters"),
    (
        {"storage": {f"m{i}.gguf": "x" * 100 for i in range(700)}},
        "runs[0].hardware: 81803 bytes of JSON, expected at most 65536",
    ),
]


def test_import_refuses_a_hardware_record_the_store_cannot_hold_naming_the_run(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _store_hardware(catalogue.home / "results.sqlite")
    good = tmp_path / "good.json"
    res = run(catalogue.root, "results", "export", str(good))
    assert res.code == 0, res.out + res.err
    uuid = json.loads(good.read_text())["runs"][0]["uuid"]
    other = _other_catalogue(catalogue, tmp_path / "other")
    db = other / ".variant" / "results.sqlite"
    _store_hardware(db)
    before = _dump(db)
    for value, said in BAD_HARDWARE:
        doc = json.loads(good.read_text())
        doc["runs"][0]["hardware"] = value
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(doc))
        res = run(other, "results", "import", str(good), str(bad))
        assert res.code == 2 and f"error: {bad}: {said}" in res.err, (value, res.out + res.err)
        assert f'(run "{uuid}")' in res.err and "Traceback" not in res.err, res.err
        assert _dump(db) == before, value
    # at the limits (four deep, any JSON values) a record imports as it was
    doc = json.loads(good.read_text())
    edge = {"a": {"b": [[1, 2.5, True, None, "x"]]}, "big": 10**30}
    doc["runs"][0]["hardware"] = edge
    good.write_text(json.dumps(doc))
    res = run(other, "results", "import", str(good))
    assert res.code == 0 and "2 run(s) imported" in res.out, res.out + res.err
    assert edge in _stored_hardware(db)


def test_hardware_lines_show_a_full_record_aligned_and_leave_out_what_is_missing() -> None:
    assert hardware_lines(HARDWARE) == [
        "sockets           2",
        "CPUs              16 physical, 32 logical",
        "NUMA node 0       CPUs 0-7,16-23, 8 physical cores, 32.0 GiB",
        "NUMA node 1       CPUs 8-15,24-31, 8 physical cores, 31.5 GiB",
        "memory available  56.0 GiB",
        "huge pages        2 MiB, 1 GiB",
        "THP               madvise",
        "model.gguf        ext4 on nvme0n1p2, non-rotational, mounted at /srv",
        "tiny.gguf         tmpfs, no block device, mounted at /dev/shm",
    ]
    assert hardware_lines({}) == []
    # a record of another shape (another machine's tool): what is not of its kind is left out
    odd = {"sockets": None, "numa_nodes": "0-3", "hugepage_sizes_kb": [True, "2048", 4], "thp": ["never"]}
    assert hardware_lines({**odd, "storage": {"m.gguf": 7, "n.gguf": {"rotational": True}}}) == [
        "huge pages  4 KiB",
        "n.gguf      rotational",
    ]
