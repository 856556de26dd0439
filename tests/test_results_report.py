"""What is made of stored runs, on synthetic data: provenance kept, comparisons, reports, questions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from builder.errors import SpecError, UserError
from builder.layout import Layout
from builder.results import compare, plot, tables
from builder.store import results
from builder.store.results import Measurement

MANIFEST: dict[str, Any] = {
    "variant": "a",
    "hash": "h" * 64,
    "source": {"name": "llama.cpp", "commit": "c" * 40, "origin": "git"},
    "toolchain": {"name": "gcc"},
    "patches": [{"series": "s", "file": "0001-x.patch", "sha256": "d" * 64}],
}


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "results.sqlite"
    with results.connect(db) as con:
        run = results.start_run(con, "default", "variant bench a b")
        for rep, (a, b) in enumerate([(100.0, 50.0), (110.0, 52.0), (90.0, 47.0)]):
            for name, value in (("a", a), ("b", b)):
                m = {**MANIFEST, "variant": name}
                params = {"threads": 2}
                results.record(con, run, m, rep, Measurement("barrier", "ns_per_node", "ns", params, value))
                results.record(
                    con,
                    run,
                    m,
                    rep,
                    Measurement(
                        "barrier",
                        "ns_per_node",
                        "ns",
                        {"threads": 4},
                        None if name == "a" else 900.0,
                        "timeout",
                    ),
                )
                results.record(
                    con,
                    run,
                    m,
                    rep,
                    Measurement("faults", "anon_huge_pages", "MiB", {}, 10.0 + rep, better="higher"),
                )
    return db


def test_database_keeps_provenance_and_compares(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with results.connect(db) as con:
        row = con.execute("SELECT * FROM measurements LIMIT 1").fetchone()
        assert row["hash"] == "h" * 64 and row["source_commit"] == "c" * 40
        assert json.loads(row["patches"]) == ["s/0001-x.patch@dddddddddddd"]
        assert con.execute("SELECT host FROM runs").fetchone()[0]
        assert results.latest_run_with(con, ["a", "b"], "barrier") == 1
        assert results.latest_run_with(con, ["a", "zzz"], None) is None
        _, rows = compare.pair_rows(con, "a", "b", None)
    by = {(r.suite, r.metric, r.case): r for r in rows}
    win = by[("barrier", "ns_per_node", "threads=2")]
    assert win.verdict == "faster" and win.comparison is not None and win.comparison.speedup.min > 1.7
    assert by[("barrier", "ns_per_node", "threads=4")].verdict == "candidate finished, baseline timed out"
    assert by[("faults", "anon_huge_pages", "")].verdict == "within noise"
    md = tables.render(rows, "a", "b", "md")
    assert "| barrier | ns_per_node (ns, lower is better) | threads=2 |" in md and "timeout" in md
    data = json.loads(tables.render(rows, "a", "b", "json"))
    assert {d["verdict"] for d in data} >= {"faster", "within noise"}
    csv_text = tables.render(rows, "a", "b", "csv")
    assert csv_text.splitlines()[0].startswith("suite,metric,unit,case,better,baseline")
    assert len(csv_text.strip().splitlines()) == 1 + len(rows)


def test_report_writes_markdown_and_readable_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.results import report

    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    layout = Layout.at(root)
    layout.home.mkdir()
    _db(tmp_path).rename(layout.home / "results.sqlite")
    for name in ("a", "b"):
        d = layout.dist / name
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(
            json.dumps({**MANIFEST, "variant": name, "source": {**MANIFEST["source"], "origin": "pypi"}})
        )
    path = report.write(layout, ["a", "b"], tmp_path / "out", say=lambda _m: None)
    text = path.read_text()
    assert "# Benchmark report: a, b" in text and "## barrier" in text and "## faults" in text
    assert "![barrier](barrier.png)" in text and "b vs a:" in text and "faster" in text
    # Parsed as a renderer would: every table is one table, with all its rows.
    tables = _tables(text)
    suite_rows = {s: len({r["params"] for r in _db_rows(layout, s)}) for s in ("barrier", "faults")}
    # per suite: the figures table and one comparison; plus the hardware and variants tables at the top
    assert len(tables) == 2 + 2 * len(suite_rows), [t[0] for t in tables]
    assert tables[0][0] == ["host", "profile", "environment of the benchmarks"] and len(tables[0]) == 2
    # a run stored without its environment (start_run's default, and every run of an older store)
    assert tables[0][1][1:] == [
        "`default`",
        "not recorded (a run stored before runs recorded their environment)",
    ]
    assert tables[1][0] == ["variant", "hash", "source commit", "patches", "reproducible"]
    # a manifest written before builds were checked for reproducibility reads as unchecked
    assert len(tables[1]) == 3 and [row[4] for row in tables[1][1:]] == ["unchecked", "unchecked"]
    figures = [t for t in tables if t[0][:2] == ["metric", "case"]]
    metrics = {s: _db_metric_cases(layout, s) for s in suite_rows}
    assert [len(t) - 1 for t in figures] == [metrics["barrier"], metrics["faults"]]
    assert all(row[1:] and len(row) == 4 for t in figures for row in t)
    import matplotlib.image

    for suite in ("barrier", "faults"):
        img = matplotlib.image.imread(tmp_path / "out" / f"{suite}.png")
        assert img.shape[0] > 200 and img.shape[1] > 300
        assert img.std() > 0.01  # not a blank canvas


def test_one_variant_run_prints_its_own_figures(tmp_path: Path) -> None:
    """`variant bench X` without a second variant: X's medians, no invented speedup."""
    with results.connect(_db(tmp_path)) as con:
        rows = compare.single_rows(con, "a", 1)
    by = {(r.suite, r.case): r for r in rows}
    assert by[("barrier", "threads=2")].candidate is not None
    assert by[("barrier", "threads=2")].candidate.median == 100.0
    assert by[("barrier", "threads=4")].verdict == "timed out"
    assert all(r.comparison is None and r.baseline is None for r in rows)
    md = tables.render_single(rows, "a", "md")
    assert md.splitlines()[0] == "| suite | metric | case | a |"
    assert "| barrier | ns_per_node (ns, lower is better) | threads=2 | 100 [90, 110] |" in md
    assert "timeout" in md and "speedup" not in md
    data = json.loads(tables.render_single(rows, "a", "json"))
    huge = next(d for d in data if d["metric"] == "anon_huge_pages")
    assert huge["candidate"] == {"variant": "a", "median": 11.0, "min": 10.0, "max": 12.0, "n": 3}
    assert (
        tables.render_single(rows, "a", "csv").splitlines()[0]
        == "suite,metric,unit,case,better,median,min,max,achieved,share"
    )


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every table markdown-it finds: rows of cell texts, the header row first."""
    from markdown_it import MarkdownIt

    tables: list[list[list[str]]] = []
    row: list[str] | None = None
    for tok in MarkdownIt("commonmark").enable("table").parse(markdown):
        if tok.type == "table_open":
            tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and row is not None:
            row.append(tok.content)
        elif tok.type == "tr_close" and row is not None:
            tables[-1].append(row)
            row = None
    return tables


def _db_rows(layout: Layout, suite: str) -> list[sqlite3.Row]:
    con = sqlite3.connect(layout.home / "results.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute("SELECT * FROM measurements WHERE suite = ?", (suite,)))
    finally:
        con.close()


def _db_metric_cases(layout: Layout, suite: str) -> int:
    return len({(r["metric"], r["params"]) for r in _db_rows(layout, suite)})


def _formats_db(db: Path) -> Path:
    # The formats suite: a fork runs its kernel's format (i4) and q4_0, upstream only q4_0.
    figures = {("fork", "i4"): [30.0, 33.0], ("fork", "q4_0"): [20.0, 21.0], ("up", "q4_0"): [24.0, 22.0]}
    with results.connect(db) as con:
        run = results.start_run(con, "default", "variant bench fork up --suite formats")
        for (name, fmt), values in figures.items():
            for rep, value in enumerate(values):
                params = {"threads": 2, "model": "tmac-i4", "format": fmt}
                m = Measurement("formats", "tg_tps", "tokens/s", params, value, better="higher")
                results.record(con, run, {**MANIFEST, "variant": name}, rep, m)
    return db


def test_format_entries_pair_kernels_inside_one_build_and_across_builds(tmp_path: Path) -> None:
    db = _formats_db(tmp_path / "results.sqlite")
    with results.connect(db) as con:
        _, inside = compare.pair_rows(con, "fork:q4_0", "fork:i4", None)
        _, across = compare.pair_rows(con, "up:q4_0", "fork:i4", None)
        _, plain = compare.pair_rows(con, "up", "fork", None)
        with pytest.raises(
            UserError, match=r'no measurement of up with format "i4" \(formats measured: q4_0\)'
        ):
            compare.pair_rows(con, "up:i4", "fork:i4", None)
        with pytest.raises(UserError, match="give every entry a format"):
            compare.pair_rows(con, "up", "fork:i4", None)
    (row,) = inside
    assert row.case == "model=tmac-i4 threads=2"  # the format left the case, so the rows pair up
    assert row.comparison is not None and row.comparison.speedup.median == pytest.approx((1.5 + 33 / 21) / 2)
    (row,) = across
    assert [row.comparison.speedup.min, row.comparison.speedup.max] == pytest.approx([1.25, 1.5])  # type: ignore[union-attr]
    # Without formats the variants pair on the formats both ran; i4, which up cannot run, is shown
    # with its figures and no ratio (not as a timeout of up's).
    assert [(r.case, r.verdict) for r in plain] == [
        ("format=i4 model=tmac-i4 threads=2", "only fork runs it"),
        ("format=q4_0 model=tmac-i4 threads=2", "slower"),  # 20/24 and 21/22
    ]
    assert plain[0].baseline is None and plain[0].candidate is not None and plain[0].comparison is None
    assert (
        "| format=i4 model=tmac-i4 threads=2 | - | 31.5 [30, 33] | - | only fork runs it |"
        in tables.render(plain, "up", "fork", "md")
    )


QUESTIONS = """
[lut]
question = "Is the LUT kernel faster than q4_0?"
claim    = "a paper says so"
suite    = "formats"
entries  = ["up:q4_0", "fork:q4_0", "fork:i4"]
bench    = ["fork", "up", "--suite", "formats"]

[barrier]
question = "Does the futex barrier help?"
suite    = "e2e"
entries  = ["fork", "fork-futex"]
bench    = ["fork-futex", "--vs", "fork", "--suite", "e2e"]
"""


def test_questions_report_one_table_and_plot_per_question_from_its_run(tmp_path: Path) -> None:
    from builder.results import report

    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    layout = Layout.at(root)
    layout.home.mkdir()
    _formats_db(layout.home / "results.sqlite")
    (root / "questions.toml").write_text(QUESTIONS)
    path = report.write_questions(layout, [], tmp_path / "out", say=lambda _m: None)
    text = path.read_text()
    assert (
        "## lut: Is the LUT kernel faster than q4_0?" in text and "Published claim: a paper says so" in text
    )
    tables = _tables(text)
    assert tables[0] == [["metric", "case", "up:q4_0", "fork:q4_0", "fork:i4"],
                         ["tg_tps (tokens/s, higher is better)", "model=tmac-i4 threads=2",
                          "23 [22, 24]", "20.5 [20, 21]", "31.5 [30, 33]"]]  # fmt: skip
    assert [t[1][-1] for t in tables[1:]] == ["slower", "faster"]  # fork:q4_0 and fork:i4 against up:q4_0
    assert (tmp_path / "out" / "lut.png").stat().st_size > 10_000
    # The question nobody has run yet says so and how to answer it, instead of failing the report.
    assert "No stored run measured fork, fork-futex in the e2e suite yet" in text
    assert "variant bench fork-futex --vs fork --suite e2e" in text
    with pytest.raises(UserError, match=r'unknown question "lutt" \(did you mean "lut"\?\)'):
        report.write_questions(layout, ["lutt"], tmp_path / "out", say=lambda _m: None)
    (root / "questions.toml").write_text(QUESTIONS.replace('"formats"', '"fromats"', 1))
    with pytest.raises(UserError, match=r'lut.suite: unknown suite "fromats" \(did you mean "formats"\?\)'):
        report.write_questions(layout, [], tmp_path / "out", say=lambda _m: None)


R1 = {"model": "r1", "model_id": "0123456789abcdef", "model_about": "llama 207M q4_k, 0.12 GiB, 4 parts"}
R2 = {"model": "r2", "model_id": "fedcba9876543210", "model_about": "bitnet 2.4B i2_s, 1.10 GiB"}
R3 = {"model": "r3", "model_id": "00000000ffffffff", "model_about": "bitnet 2.4B tl2, 1.00 GiB"}
# A record from another machine: a value holding a line break must not end the report's code block.
RECORD = {"sockets": 2, "physical_cores": 16, "logical_cpus": 32, "thp": "madvise\nnever",
          "storage": {"r1-00001-of-00004.gguf": {"fstype": "ext4", "device": "nvme0n1p2"}}}  # fmt: skip


def _own_models_db(db: Path) -> Path:
    """e2e on three of the user's models and the generated one: b has no kernel for r1's types and
    neither variant for r3's; a timed out on the generated model."""
    with results.connect(db) as con:
        run = results.start_run(con, "default", "variant bench a b --model r1 --model r2", hardware=RECORD)
        for rep in range(3):
            for name in ("a", "b"):
                cases: list[tuple[dict[str, Any], float | None, str]] = [
                    ({**R1, "threads": 1}, 10.0 + rep, ""),
                    ({**R1, "threads": 2}, 20.0 + rep, ""),
                    ({**R2, "threads": 2}, (5.0 if name == "a" else 6.0) + rep, ""),
                    ({**R3, "threads": 2}, None, f"skipped: {name} has no kernel for type tl2"),
                    ({"model": "wide", "threads": 2}, None if name == "a" else 7.0, "timeout after 60 s"),
                ]
                if name == "b":  # every case of r1, each repetition: one skipped row
                    cases[:2] = [
                        (p, None, "skipped: upstream has no kernel for type i4") for p, _, _ in cases[:2]
                    ]
                for params, value, note in cases:
                    m = Measurement("e2e", "tg_tps", "tokens/s", params, value, note, better="higher")
                    results.record(con, run, {**MANIFEST, "variant": name}, rep, m)
    return db


def _own_layout(tmp_path: Path) -> Layout:
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    layout = Layout.at(root)
    layout.home.mkdir()
    _own_models_db(layout.home / "results.sqlite")
    return layout


def _code_blocks(markdown: str) -> list[str]:
    from markdown_it import MarkdownIt

    return [t.content for t in MarkdownIt("commonmark").parse(markdown) if t.type == "code_block"]


ABOUT1 = "r1 (llama 207M q4_k, 0.12 GiB, 4 parts)"
ABOUT2 = "r2 (bitnet 2.4B i2_s, 1.10 GiB)"
ABOUT3 = "r3 (bitnet 2.4B tl2, 1.00 GiB)"


def test_report_names_a_users_model_shows_skips_and_the_runs_hardware(tmp_path: Path) -> None:
    from builder.results import report
    from builder.results.hardware import hardware_lines

    layout = _own_layout(tmp_path)
    text = report.write(layout, ["a", "b"], tmp_path / "out", say=lambda _m: None).read_text()
    # the hardware record under the host table, each line as hardware_lines has it (the break made a space)
    (block,) = _code_blocks(text)
    assert block.splitlines() == [line.replace("\n", " ") for line in hardware_lines(RECORD)]
    assert "madvise never" in block and "r1-00001-of-00004.gguf" in block
    figures = next(t for t in _tables(text) if t[0][:2] == ["metric", "case"])
    assert {row[1]: row[2:] for row in figures[1:]} == {
        f"model={ABOUT1} threads=1": ["11 [10, 12]", "skipped"],
        f"model={ABOUT1} threads=2": ["21 [20, 22]", "skipped"],
        f"model={ABOUT2} threads=2": ["6 [5, 7]", "7 [6, 8]"],
        "model=wide threads=2": ["timeout", "7 [7, 7]"],
    }
    # the reasons under the table: once per variant and model, whatever the repetitions and cases
    notes = [line for line in text.splitlines() if line.startswith("- ")]
    assert notes == [
        f"- a skipped {ABOUT3}: a has no kernel for type tl2",
        f"- b skipped {ABOUT1}: upstream has no kernel for type i4",
        f"- b skipped {ABOUT3}: b has no kernel for type tl2",
    ]
    comparison = _tables(text)[-1]
    assert [row[2] for row in comparison[1:]] == [f"model={ABOUT1} threads=1", f"model={ABOUT1} threads=2",
                                                 f"model={ABOUT2} threads=2", "model=wide threads=2",
                                                 f"model={ABOUT3}"]  # fmt: skip
    assert comparison[1][3:5] == ["11 [10, 12]", "skipped"]
    assert "0123456789abcdef" not in text and "00000000ffffffff" not in text  # never the identity
    # a run without a record shows none (and the report still has its host table)
    with results.connect(layout.home / "results.sqlite") as con:
        con.execute("UPDATE runs SET hardware = NULL")
    text = report.write(layout, ["a", "b"], tmp_path / "out2", say=lambda _m: None).read_text()
    assert _code_blocks(text) == [] and _tables(text)[0][0][0] == "host"


def test_a_suite_every_variant_skipped_has_its_reasons_and_no_plot(tmp_path: Path) -> None:
    from builder.results import report

    layout = _own_layout(tmp_path)
    text = report.write(layout, ["a", "b"], tmp_path / "out", lambda _m: None, models=["r3"]).read_text()
    assert "![e2e]" not in text and not (tmp_path / "out" / "e2e.png").exists()
    assert "Only the cases of r3 (bitnet 2.4B tl2, 1.00 GiB)." in " ".join(text.split())
    assert [line for line in text.splitlines() if line.startswith("- ")] == [
        f"- a skipped {ABOUT3}: a has no kernel for type tl2",
        f"- b skipped {ABOUT3}: b has no kernel for type tl2",
    ]
    assert [t[0][:3] for t in _tables(text)][2:] == [["suite", "metric", "case"]]  # the comparison alone


def test_plot_labels_name_a_users_model_by_label_and_what_it_is() -> None:

    labels = plot.labels([{**R1, "threads": 2}, {**R2, "threads": 2}, {"model": "wide", "threads": 2}])
    assert labels == [f"model={ABOUT1}", f"model={ABOUT2}", "model=wide"]
    assert plot.labels([{**R1, "threads": 1}, {**R1, "threads": 2}]) == ["threads=1", "threads=2"]


def test_report_model_filter_by_label_or_identity_and_its_error(tmp_path: Path) -> None:
    from builder.results import report

    layout = _own_layout(tmp_path)

    def cases(models: list[str]) -> set[str]:
        text = report.write(layout, ["a", "b"], tmp_path / "out", lambda _m: None, models=models).read_text()
        figures = next(t for t in _tables(text) if t[0][:2] == ["metric", "case"])
        return {row[1].split(" threads=")[0] for row in figures[1:]}

    assert cases(["r2"]) == {f"model={ABOUT2}"}
    assert cases(["012345"]) == {f"model={ABOUT1}"}  # its identity, from 6 hex digits
    assert cases(["0123456789ABCDEF", "wide"]) == {f"model={ABOUT1}", "model=wide"}
    # fewer than 6 hex digits is a label, which no model has; the error lists the run's models
    for ref in ("01234", "r4"):
        with pytest.raises(UserError) as err:
            cases([ref])
        assert str(err.value) == (
            f"--model {ref}: run 1 measured no model of that label or identity (expected a label, or 6 or"
            f" more hex digits of an identity; models measured: {ABOUT1}, {ABOUT2}, {ABOUT3}, wide)"
        )


def test_compare_model_filter_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder import cli

    monkeypatch.delenv("VARIANT_HOME", raising=False)
    layout = _own_layout(tmp_path)

    def variant(*args: str) -> tuple[int, str, str]:
        try:
            cli.main(["--root", str(layout.root), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = variant("compare", "a", "b", "--model", "fedcba98", "--model", "r3", "--format", "json")
    assert code == 0, err
    assert [(r["params"]["model"], r["verdict"]) for r in json.loads(out)] == [
        ("r2", "faster"),
        ("r3", "a skipped: a has no kernel for type tl2; b skipped: b has no kernel for type tl2"),
    ]
    code, out, err = variant("compare", "a", "b", "--model", "r1")
    assert code == 0, err
    assert (
        f"| e2e | tg_tps (tokens/s, higher is better) | model={ABOUT1} threads=1 | 11 [10, 12] | skipped |"
        in out
    )
    assert len(out.strip().splitlines()) == 2 + 2 and "r2" not in out and "wide" not in out
    code, _, err = variant("compare", "a", "b", "--model", "nope")
    assert code == 2 and "--model nope: run 1 measured no model" in err and ABOUT1 in err
    code, _, err = variant("report", "--questions", "--model", "r1", "--out", str(tmp_path / "q"))
    assert code == 2 and "--model: with --questions" in err


def test_pr_tables_name_a_users_model_and_carry_the_runs_hardware(tmp_path: Path) -> None:
    from builder.patch.series import PatchFile, Series
    from builder.pr import prdoc
    from builder.results.hardware import hardware_lines

    patch = PatchFile(tmp_path / "0001-x.patch", "d" * 64, "x", "a")
    series = Series("s", tmp_path, tmp_path / "series.toml", "", None, "draft", (), (), (), (), "", {},
                    patches=(patch,))  # fmt: skip
    with results.connect(_own_models_db(tmp_path / "results.sqlite")) as con:
        # b carries the series (MANIFEST's patch), a does not
        con.execute("UPDATE measurements SET patches = '[]' WHERE variant = 'a'")
        (pair,) = prdoc.find_pairs(con, series, None)
        _, rows = compare.pair_rows(con, pair.baseline, pair.candidate, "e2e", pair.run_id)
    assert pair.hardware == tuple(line.replace("\n", " ") for line in hardware_lines(RECORD))
    table = prdoc.table([r for r in rows if r.metric != "-"], "a", "b").splitlines()
    assert table[0] == "| Model | Threads | tokens/s a | tokens/s b | Speedup | Verdict |"
    assert (
        table[2]
        == f"| {ABOUT1} | 1 | 11 [10, 12] | skipped | - | b skipped: upstream has no kernel for type i4 |"
    )


def test_pr_md_keeps_a_users_model_whose_description_holds_a_pipe_and_a_line_break_in_one_row(
    tmp_path: Path,
) -> None:
    from builder.patch.export import Package
    from builder.patch.revisions import Revision
    from builder.patch.series import PatchFile, Series
    from builder.pr import prdoc

    layout = _own_layout(tmp_path)
    with results.connect(layout.home / "results.sqlite") as con:
        con.execute("UPDATE measurements SET patches = '[]' WHERE variant = 'a'")
        # what r1 (measured) and r3 (which neither variant ran) are, as a hostile GGUF header says it
        for about, hostile in (("llama 207M", "a|b\\nc"), ("bitnet 2.4B tl2", "x|y\\nz")):
            con.execute("UPDATE measurements SET params = replace(params, ?, ?)", (about, hostile))
    patch = PatchFile(tmp_path / "0001-x.patch", "d" * 64, "x", "a")
    series = Series("s", tmp_path, tmp_path / "series.toml", "", None, "draft", (), (), (), (), "", {},
                    patches=(patch,))  # fmt: skip
    out = tmp_path / "pr"
    out.mkdir()
    files = (out / "0000-cover-letter.patch", patch.path)
    base = "b" * 40
    pkg = Package(series, "llama.cpp", out, Revision(0, tmp_path, base, ()), False, None, "s", base, "e" * 40,
                  files, tmp_path, base, ("x",), ("src/x.c",))  # fmt: skip
    path, _ = prdoc.write(layout, pkg, lambda _m: None, run_ids=None, tests=False)
    text = path.read_text()
    perf = next(t for t in _tables(text) if t[0][0] == "Model")
    assert len(perf) == 1 + 4 and {len(row) for row in perf} == {len(perf[0])}  # one row per case
    assert [row[0] for row in perf[1:3]] == ["r1 (a|b c q4_k, 0.12 GiB, 4 parts)"] * 2  # the table's own \\|
    not_run = [line for line in text.splitlines() if line.startswith("- r3")]
    assert not_run == [
        "- r3 (x\\|y z, 1.00 GiB): a skipped: a has no kernel for type tl2; b skipped: b has no kernel"
        " for type tl2"
    ]


def test_a_question_about_a_users_model_is_answered_by_the_newest_run_that_measured_it(
    tmp_path: Path,
) -> None:
    from builder.results import questions, report

    layout = _own_layout(tmp_path)  # run 1: r1, r2, r3 and wide
    with results.connect(layout.home / "results.sqlite") as con:  # run 2, newer: only the generated model
        run = results.start_run(con, "default", "variant bench a b")
        for name in ("a", "b"):
            m = Measurement(
                "e2e", "tg_tps", "tokens/s", {"model": "wide", "threads": 2}, 9.0, better="higher"
            )
            results.record(con, run, {**MANIFEST, "variant": name}, 0, m)
    # the question names r2 by its identity; its bench arguments, by the path that measures it
    mine = '[mine]\nquestion = "b on r2?"\nsuite = "e2e"\nentries = ["a", "b"]\nmodel = "fedcba98"\n'
    toml = layout.root / "questions.toml"
    toml.write_text(mine + 'bench = ["b", "--vs", "a", "--model", "/m/r2.gguf"]\n')
    q = questions.load(toml)["mine"]
    assert q.command == "variant bench b --vs a --model /m/r2.gguf"  # as given: an identity is no --model
    text = report.write_questions(layout, [], tmp_path / "out", say=lambda _m: None).read_text()
    assert ABOUT2 in text and "Run 1 on" in text  # the older run: the newest never measured r2
    assert ABOUT1 not in text and "model=wide" not in text  # and only its cases
    # bench arguments that do not measure the question's model are refused, the key named
    toml.write_text(mine + 'bench = ["b", "--vs", "a"]\n')
    with pytest.raises(SpecError) as err:
        questions.load(toml)
    assert str(err.value) == (
        f"{toml}: mine.bench: a question with a model gives the bench arguments"
        " that measure it: add --model LABEL or --model PATH"
    )


def test_a_question_under_a_memory_limit_is_answered_by_a_run_under_that_limit_only(tmp_path: Path) -> None:
    """The big-model question and a question without a limit ask different things of one suite: the
    newest run of its variants is not enough, its memory limit must be the question's."""
    from builder.results import questions, report

    layout = Layout.at(tmp_path)
    with results.connect(layout.home / "results.sqlite") as con:
        for value, limit in ((1.0, 2 << 30), (50.0, None), (7.0, 4 << 30)):  # runs 1, 2, 3
            hw = {"memory_limit": {"bytes": limit, "cgroup": "v1"}} if limit else {}
            run = results.start_run(con, "default", "variant bench a b", hardware=hw)
            for name in ("a", "b"):
                m = Measurement("faults", "tg_tokens_s", "tokens/s", {"model": "f16"}, value, better="higher")
                results.record(con, run, {**MANIFEST, "variant": name}, 0, m)
    toml = tmp_path / "questions.toml"
    head = 'suite = "faults"\nentries = ["a", "b"]\n'
    toml.write_text(
        f'[small]\nquestion = "2G?"\n{head}bench = ["b", "--vs", "a", "--memory-max", "2G"]\n'
        f'[free]\nquestion = "free?"\n{head}bench = ["b", "--vs", "a"]\n'
    )
    qs = questions.load(toml)
    assert (qs["small"].memory_max, qs["free"].memory_max) == (2 << 30, None)
    with results.connect(layout.home / "results.sqlite") as con:
        assert report._newest(con, ["a", "b"], "faults", None, 2 << 30)[0] == 1
        assert report._newest(con, ["a", "b"], "faults", None, None)[0] == 2
        assert report._newest(con, ["a", "b"], "faults", None, 1 << 30)[0] is None
    toml.write_text(f'[bad]\nquestion = "?"\n{head}bench = ["b", "--memory-max", "lots"]\n')
    with pytest.raises(SpecError, match=r"bad\.bench: --memory-max: 'lots' is not a size"):
        questions.load(toml)


def test_a_hardware_record_of_another_shape_has_no_memory_limit() -> None:
    from builder.results import report

    odds: list[Any] = [None, {"memory_limit": None}, {"memory_limit": "2G"}, {"memory_limit": []},
                {"memory_limit": {"bytes": True}}, {"memory_limit": {"bytes": "2G"}}]  # fmt: skip
    for odd in odds:
        assert report._limit_of(odd) is None
    assert report._limit_of({"memory_limit": {"bytes": 2 << 30}}) == 2 << 30
