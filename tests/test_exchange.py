"""`variant results export` / `import`: runs move between catalogues whole, once, and compare the same."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from builder.bench import results

from .conftest import REPO, Catalogue, Outcome, write_sources

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
    assert run(catalogue.root, "build", "a", "b").code == 0
    assert (
        run(catalogue.root, "bench", "a", "b", "--suite", "barrier", "--reps", "3", "--threads", "1").code
        == 0
    )
    first = tmp_path / "first.json"
    res = run(catalogue.root, "results", "export", str(first))
    assert res.code == 0 and "exported 1 run(s)" in res.err

    other = _other_catalogue(catalogue, tmp_path / "other")
    # the other catalogue has its own history: imported runs get other local ids
    with results.connect(other / ".variant" / "results.sqlite") as con:
        results.start_run(con, "default", "variant bench x")
    res = run(other, "results", "import", str(first))
    assert res.code == 0 and "1 run(s) imported (12 measurements), 0 already here" in res.out
    here = run(catalogue.root, "compare", "a", "b")
    there = run(other, "compare", "a", "b")
    assert here.code == there.code == 0
    assert here.out == there.out and "| barrier | ns_per_node" in here.out
    for fmt in ("json", "csv"):
        assert (
            run(catalogue.root, "compare", "a", "b", "--format", fmt).out
            == run(other, "compare", "a", "b", "--format", fmt).out
        )

    # a second run; everything is exported again: only the new run is added
    assert (
        run(catalogue.root, "bench", "b", "a", "--suite", "barrier", "--reps", "2", "--threads", "1").code
        == 0
    )
    both = tmp_path / "both.json"
    assert run(catalogue.root, "results", "export", str(both)).code == 0
    res = run(other, "results", "import", str(both), str(first))
    assert res.code == 0
    assert f"{both}: 1 run(s) imported (8 measurements), 1 already here" in res.out
    assert f"{first}: 0 run(s) imported (0 measurements), 1 already here" in res.out
    assert run(catalogue.root, "compare", "a", "b").out == run(other, "compare", "a", "b").out
    # the report job's tables: the other catalogue's own run measured nothing and has none
    assert run(catalogue.root, "results", "summary").out == run(other, "results", "summary").out

    # imported in the other order (the newer run first): "newest" still means the newer run
    third = _other_catalogue(catalogue, tmp_path / "third")
    newer = tmp_path / "newer.json"
    assert run(catalogue.root, "results", "export", str(newer), "--run", "2").code == 0
    assert run(third, "results", "import", str(newer)).code == 0
    assert run(third, "results", "import", str(first)).code == 0
    assert run(third, "compare", "a", "b").out == run(catalogue.root, "compare", "a", "b").out

    # what comes back out is what went in, byte for byte (the export's own time aside)
    back = tmp_path / "back.json"
    ids = [r["id"] for r in json.loads(run(other, "results", "list", "--json").out) if r["measurements"]]
    assert run(other, "results", "export", str(back), *(a for i in ids for a in ("--run", str(i)))).code == 0
    assert _runs(back) == _runs(both)


def test_summary_shows_every_run_against_its_first_variant(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("a", TARGETS)
    catalogue.variant("b", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    assert run(catalogue.root, "build", "a", "b").code == 0
    assert run(catalogue.root, "bench", "a", "b", "--suite", "barrier", "--reps", "2").code == 0
    assert run(catalogue.root, "bench", "b", "--suite", "barrier", "--reps", "2").code == 0
    out = run(catalogue.root, "results", "summary").out
    assert out.count("### run ") == 2
    assert "| suite | metric | case | a | b | speedup | verdict |" in out
    assert "| suite | metric | case | b |" in out
    assert "`variant bench" in out


def test_old_databases_get_run_ids_and_bad_files_change_nothing(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    empty = run(catalogue.root, "results", "list")  # before any run: said, not a silent blank
    assert empty.code == 0 and empty.out == "" and "no runs stored in" in empty.err
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
    assert run(catalogue.root, "results", "export", str(good)).code == 0
    bad = tmp_path / "bad.json"
    doc = json.loads(good.read_text())
    doc["runs"][0]["uuid"] = "f" * 32
    doc["runs"][1]["measurements"] = [{"variant": "x"}]
    bad.write_text(json.dumps(doc))
    res = run(catalogue.root, "results", "import", str(bad))
    assert res.code == 2 and "runs[1].measurements[0]: missing hash" in res.err
    res = run(catalogue.root, "results", "import", str(tmp_path / "nope.json"))
    assert res.code == 2 and "cannot read" in res.err
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    res = run(catalogue.root, "results", "import", str(tmp_path / "other.json"))
    assert res.code == 2 and "not a results export" in res.err
    assert len(json.loads(run(catalogue.root, "results", "list", "--json").out)) == 2
    res = run(catalogue.root, "results", "export", str(good), "--run", "7")
    assert res.code == 2 and "no stored run with id 7" in res.err
