"""Benchmarks on a user's own models: a case's targets, skips and timeouts, the memory guard
(builder/bench/case.py, loading.py), and compare's skipped cells and runs joined by model identity
(builder/results/compare.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.bench import case, loading, pagecache, profiles
from builder.bench.profiles import Profile
from builder.errors import UserError
from builder.host import topology
from builder.layout import Layout
from builder.models.installed import Installed
from builder.models.own import OwnModel
from builder.results import compare, tables
from builder.store import results
from builder.store.results import Measurement

from .test_own_models import write_gguf

GIB = 2**30


def _own(label: str, size: int, identity: str = "0123456789abcdef") -> OwnModel:
    return OwnModel(
        label, (Path(f"/models/{label}.gguf"),), identity, "llama", 8_000_000_000, size,
        (("q4_k", 200, size),), (("q4_k", 12),),
    )  # fmt: skip


def _ctx(tmp_path: Path, **kw: Any) -> case.Context:
    return case.Context(Layout.at(tmp_path), kw.pop("profile", Profile()), (2,), lambda _m: None, **kw)


# --- Context: targets, skips, timeouts ------------------------------------------------------------


def test_the_users_models_are_the_targets_named_by_label_identity_and_description(tmp_path: Path) -> None:
    from builder.models import own

    path = tmp_path / "mine.gguf"
    write_gguf(path)
    m = own.load("mine", path)
    (t,) = _ctx(tmp_path, own=(m,)).targets("q4_0")  # the weight type is the generated model's only
    assert (t.path, t.size, t.own) == (path, path.stat().st_size, m)
    assert t.params == {"model": "mine", "model_id": m.identity, "model_about": m.about()}


def test_a_skip_applies_to_its_variant_and_model_only(tmp_path: Path) -> None:
    i4, q8 = _own("i4", GIB, "a" * 16), _own("q8", GIB, "b" * 16)
    why = "llama.cpp has no kernel for type i4"
    ctx = _ctx(tmp_path, own=(i4, q8), skips=(("up", i4.identity, why),))
    t_i4, t_q8 = ctx.targets()
    up, tmac = Installed("up", tmp_path, {}), Installed("tmac", tmp_path, {})
    assert ctx.why_skipped(up, t_i4) == why
    assert ctx.why_skipped(tmac, t_i4) is None and ctx.why_skipped(up, t_q8) is None
    generated = case.Target(tmp_path / "wide.gguf", {"model": "wide"}, GIB)  # never skipped
    assert ctx.why_skipped(up, generated) is None
    m = case.skipped("e2e", "tg", "tokens/s", t_i4.params, why, "higher")
    assert m.value is None and m.note == f"skipped: {why}"


def test_the_default_timeout_scales_with_a_users_model_and_a_given_one_does_not(tmp_path: Path) -> None:
    big = case.Target(Path("/m/big.gguf"), {"model": "big"}, 10 * GIB, _own("big", 10 * GIB))
    small = case.Target(Path("/m/s.gguf"), {"model": "s"}, GIB // 2, _own("s", GIB // 2))
    generated = case.Target(Path("/m/wide.gguf"), {"model": "wide"}, 10 * GIB)
    ctx = _ctx(tmp_path)
    assert ctx.profile.timeout == 120.0
    assert ctx.timeout(big) == 60 + 30 * 10  # 60 s and 30 s per GiB
    assert ctx.timeout(small) == 120.0  # never below the default
    assert ctx.timeout(generated) == ctx.timeout(None) == 120.0
    given = _ctx(tmp_path, profile=Profile(timeout=45.0, timeout_given=True))
    assert given.timeout(big) == 45.0
    t = case.timeout("load", "load_ms", "ms", {}, ctx, "lower", big)
    assert t.value is None and t.note == "timeout after 360 s"


def test_a_timeout_given_as_the_default_value_is_not_scaled(tmp_path: Path) -> None:
    big = case.Target(Path("/m/big.gguf"), {"model": "big"}, 10 * GIB, _own("big", 10 * GIB))
    # what cli/bench.py does with --timeout 120
    ctx = _ctx(tmp_path, profile=dataclasses.replace(Profile(), timeout=120.0, timeout_given=True))
    assert ctx.timeout(big) == 120.0


# --- loading.check_fits: the memory guard ---------------------------------------------------------


def test_a_resident_load_mode_for_a_model_larger_than_memory_is_refused_with_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topology, "mem_available", lambda: 8 * GIB)
    big = case.Target(Path("/m/r1.gguf"), {"model": "r1"}, 12 * GIB, _own("r1", 12 * GIB))
    fits = case.Target(Path("/m/s.gguf"), {"model": "s"}, 7 * GIB, _own("s", 7 * GIB))  # 7 < 0.9 * 8
    for mode in loading.RESIDENT:
        with pytest.raises(UserError) as e:
            loading.check_fits(_ctx(tmp_path, load_modes=("default", mode)), [fits, big])
        msg = str(e.value)
        assert f"load mode {mode} holds the whole model in memory" in msg, msg
        assert "r1 is 12.00 GiB" in msg and "8.00 GiB available" in msg and "--allow-swap" in msg, msg
        loading.check_fits(_ctx(tmp_path, load_modes=(mode,)), [fits])
        loading.check_fits(_ctx(tmp_path, load_modes=(mode,), allow_swap=True), [big])
    loading.check_fits(_ctx(tmp_path, load_modes=("default", "mmap", "fio")), [big])
    tight = case.Target(Path("/m/t.gguf"), {"model": "t"}, int(7.3 * GIB), _own("t", int(7.3 * GIB)))
    with pytest.raises(UserError, match="90% of it"):  # 7.3 > 0.9 * 8: the headroom counts
        loading.check_fits(_ctx(tmp_path, load_modes=("none",)), [tight])


# --- compare: skipped cells, runs joined by model identity -----------------------------------------

MANIFEST: dict[str, Any] = {
    "variant": "a",
    "hash": "h" * 64,
    "source": {"name": "llama.cpp", "commit": "c" * 40},
}
ABOUT = "llama 8.0B q4_k, 4.58 GiB"


def _params(label: str, mid: str, threads: int = 2) -> dict[str, Any]:
    return {"model": label, "model_id": mid, "model_about": ABOUT, "threads": threads}


def _record(db: Path, cells: list[tuple[str, dict[str, Any], list[float] | str]]) -> int:
    """One run: each (variant, params, figures per rep | the reason it skipped), three reps interleaved."""
    with results.connect(db) as con:
        run = results.start_run(con, "default", "variant bench")
        for rep in range(3):
            for variant, params, figures in cells:
                m = {**MANIFEST, "variant": variant}
                if isinstance(figures, str):
                    done = case.skipped("load", "load_ms", "ms", params, figures, "lower")
                else:
                    done = Measurement("load", "load_ms", "ms", params, figures[rep], better="lower")
                results.record(con, run, m, rep, done)
    return run


def test_a_variant_that_skips_a_model_shows_skipped_and_its_reason(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    why = "llama.cpp has no kernel for type i4"
    i4, q8 = _params("i4m", "a" * 16), _params("q8m", "b" * 16)
    _record(db, [("up", i4, why), ("tmac", i4, [10.0, 11.0, 12.0]),
                 ("up", q8, [20.0, 21.0, 22.0]), ("tmac", q8, [10.0, 10.5, 11.0])])  # fmt: skip
    with results.connect(db) as con:
        _, rows = compare.pair_rows(con, "up", "tmac", None)
    by = {r.params["model"]: r for r in rows}
    assert set(by) == {"i4m", "q8m"}
    assert by["i4m"].verdict == f"up skipped: {why}" and by["i4m"].cells() == ("skipped", "11 [10, 12]")
    assert by["q8m"].verdict == "faster"
    md = tables.render(rows, "up", "tmac", "md")
    assert f"| skipped | 11 [10, 12] | - | up skipped: {why} |" in md, md


def test_a_model_every_variant_skips_is_one_row_with_each_ones_reason(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    tl2 = "a" * 16
    cells: list[tuple[str, dict[str, Any], list[float] | str]] = [
        (v, _params("bitnet", tl2, t), f"{src} has no kernel for type tl2")
        for t in (1, 2)
        for v, src in (("up", "llama.cpp"), ("tmac", "llama.cpp-tmac"))
    ]
    _record(
        db,
        [*cells, ("up", _params("q8m", "b" * 16), [2.0] * 3), ("tmac", _params("q8m", "b" * 16), [1.0] * 3)],
    )
    with results.connect(db) as con:
        _, rows = compare.pair_rows(con, "up", "tmac", None)
    skipped = [r for r in rows if r.params["model"] == "bitnet"]
    assert len(skipped) == 1 and len(rows) == 2, [r.verdict for r in rows]
    (row,) = skipped
    assert set(row.verdict.split("; ")) == {
        "up skipped: llama.cpp has no kernel for type tl2",
        "tmac skipped: llama.cpp-tmac has no kernel for type tl2",
    }
    assert row.cells() == ("skipped", "skipped") and row.comparison is None


def test_one_model_under_two_labels_in_two_runs_joins_by_identity(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    mid = "c" * 16
    first = _record(db, [("futex", _params("r1", mid), [100.0, 101.0, 99.0])])
    second = _record(db, [("futex", _params("deepseek", mid), [80.0, 81.0, 79.0])])
    with results.connect(db) as con:
        run, rows = compare.pair_rows(con, f"futex@{first}", f"futex@{second}", None)
    assert run == first
    (row,) = rows
    assert row.verdict == "faster (two runs, not interleaved)"
    assert row.case == f"model=r1 ({ABOUT}) threads=2"  # the first label names it
    md = tables.render(rows, f"futex@{first}", f"futex@{second}", "md")
    assert f"| futex@{first} | futex@{second} |" in md and "(two runs, not interleaved)" in md
    # the same run on both sides is interleaved: no such mark
    with results.connect(db) as con:
        _, same = compare.pair_rows(con, f"futex@{first}", f"futex@{first}", None)
    assert same[0].verdict == "within noise"


def test_a_model_both_runs_skip_under_two_labels_is_one_row(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    mid, why = "d" * 16, "llama.cpp has no kernel for type i4"
    first = _record(db, [("up", _params("r1", mid), why)])
    second = _record(db, [("up", _params("deepseek", mid), why)])
    with results.connect(db) as con:
        _, rows = compare.pair_rows(con, f"up@{first}", f"up@{second}", None)
    assert len(rows) == 1, [(r.case, r.verdict) for r in rows]


def test_a_run_entry_is_digits_after_the_last_at_and_a_version_comes_before_it(tmp_path: Path) -> None:
    assert compare.entry("futex-gcc:q4_0@12") == ("futex-gcc", "q4_0", 12)
    assert compare.entry("futex-gcc") == ("futex-gcc", None, None)
    # NAME@VERSION is the variant at another upstream version; only digits make a run
    assert compare.entry("futex-gcc@0.3.30") == ("futex-gcc@0.3.30", None, None)
    assert compare.entry("futex-gcc@0.3.30:q4_0@7") == ("futex-gcc@0.3.30", "q4_0", 7)
    for bad in ("futex-gcc@", "futex-gcc@-1", "@1.5", "futex-gcc@@"):
        with pytest.raises(UserError, match=r"expected VARIANT\[@VERSION\]"):
            compare.entry(bad)
    db = tmp_path / "results.sqlite"
    _record(db, [("futex", _params("r1", "c" * 16), [1.0, 1.0, 1.0])])
    with results.connect(db) as con, pytest.raises(UserError, match='"futex@-x": expected VARIANT'):
        compare.pair_rows(con, "futex@1", "futex@-x", None)


def test_case_text_names_a_users_model_by_label_and_description_not_identity() -> None:
    params = _params("r1", "e" * 16)
    assert compare.case_text(params) == f"model=r1 ({ABOUT}) threads=2"
    assert compare.case_text({"model": "q8_0", "threads": 4}) == "model=q8_0 threads=4"
    rows = [compare.Row("load", "load_ms", "ms", params, "lower", None, None, None, "both timed out")]
    assert "e" * 16 not in tables.render(rows, "a", "b", "md")
    assert json.loads(tables.render(rows, "a", "b", "json"))[0]["params"]["model_id"] == "e" * 16


def test_a_profiles_own_timeout_counts_as_given_and_its_absence_does_not(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text('[slow]\ntimeout = 120\n[plain]\ndescription = "no timeout"\n')
    assert profiles.load(tmp_path, "slow").timeout_given
    assert not profiles.load(tmp_path, "plain").timeout_given
    assert not profiles.load(tmp_path, "default").timeout_given


def test_drop_caches_empties_the_page_cache_instead_of_each_files_pages_and_needs_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    knob = tmp_path / "drop_caches"
    knob.write_text("")
    monkeypatch.setattr(pagecache, "DROP_CACHES", knob)
    evicted: list[Path] = []
    monkeypatch.setattr(pagecache, "evict", evicted.append)
    target = case.Target(tmp_path / "m.gguf", {"model": "m"}, GIB)
    pagecache.evict_all(_ctx(tmp_path), target)
    assert evicted == [tmp_path / "m.gguf"] and knob.read_text() == ""  # per file, by default
    dropping = _ctx(tmp_path, drop_caches=True)
    pagecache.check_drop_caches(dropping)
    pagecache.evict_all(dropping, target)
    assert knob.read_text() == "3\n" and evicted == [tmp_path / "m.gguf"]
    monkeypatch.setattr(pagecache, "DROP_CACHES", tmp_path / "absent" / "drop_caches")
    with pytest.raises(UserError, match=r"--drop-caches: .* not writable here"):
        pagecache.check_drop_caches(dropping)
    pagecache.check_drop_caches(_ctx(tmp_path))  # not asked for: never checked


def test_reps_auto_is_not_stopped_by_a_variant_that_skips_the_model(tmp_path: Path) -> None:
    """A skipped cell is not a timeout: the other variants' figures calibrate the case."""
    from builder.bench import calibrate, runner

    values = iter([10.0, 10.1, 9.9, 10.0, 10.05, 9.95, 10.0, 10.02])

    def run(inst: Installed) -> list[Measurement]:
        if inst.name == "up":
            return [case.skipped("e2e", "tg_tps", "tokens/s", {"model": "m"}, "no kernel", "higher")]
        return [Measurement("e2e", "tg_tps", "tokens/s", {"model": "m"}, next(values), better="higher")]

    said: list[str] = []
    insts = [Installed(n, tmp_path, {**MANIFEST, "variant": n}) for n in ("up", "fork")]
    with results.connect(tmp_path / "r.sqlite") as con:
        run_id = results.start_run(con, "default", "variant bench")
        one = case.Case("e2e", "e2e m tg t=2", run)
        runner._measure(con, run_id, one, insts, calibrate.Target(), "[1/1]", said.append)
        query = "SELECT COUNT(DISTINCT rep) FROM measurements WHERE variant = 'fork'"
        reps = con.execute(query).fetchone()[0]
    assert reps == 3, said  # the target's minimum, within ±3%: not one rep cut short as a timeout
    assert "timed out" not in said[-1] and "within" in said[-1], said[-1]


def test_smoke_refuses_a_resident_load_mode_for_a_model_that_does_not_fit_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Any]
) -> None:
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    model = tmp_path / "mine ü.gguf"
    write_gguf(model)
    monkeypatch.setattr(topology, "mem_available", lambda root=Path("/"): 1000)
    out = run(root, "smoke", "not-built", "--model", f"m={model}", "--load-mode", "none")
    assert out.code == 2 and "load mode none holds the whole model in memory: m is" in out.err
    # mmap modes stream from disk: past the guard, to the next refusal (this catalogue has no sources)
    out = run(root, "smoke", "not-built", "--model", f"m={model}", "--load-mode", "mmap")
    assert out.code == 2 and "sources.toml: file not found" in out.err and "whole model" not in out.err
    out = run(root, "smoke", "not-built", "--model", f"m={model}", "--load-mode", "none", "--allow-swap")
    assert out.code == 2 and "sources.toml: file not found" in out.err and "whole model" not in out.err


def test_a_model_filter_takes_either_label_two_runs_gave_one_model() -> None:
    from builder.results import cases

    mid = "ab" * 8
    raw = [_params("q4km", mid), _params("r1", mid), {"model": "wide", "threads": 2}]
    assert cases.identities(("r1", "wide", "q4km"), raw) == (mid, "wide", mid)
    shown_as = [_params("q4km", mid), {"model": "wide", "threads": 2}]  # compare names it by its first label
    keep = cases.model_filter(cases.identities(("r1",), raw), shown_as, (5, 6))
    assert [keep(p) for p in shown_as] == [True, False]
    with pytest.raises(UserError, match="--model r1: runs 5 and 6 measured no model"):
        cases.model_filter(("r1",), shown_as, (5, 6))  # without the raw labels, r1 is unknown


# --- variant bench --model end to end, on a published fake variant (shell scripts for programs) ----


def _published(root: Path) -> None:
    """dist/v as a build publishes it: a manifest, a llama-bench that prints one JSON result, and a
    llama-completion (the load suites' program) that does nothing."""
    folder = root / "dist" / ".builds" / "v-0123456789ab-cafe0001"
    (folder / "bin").mkdir(parents=True)
    for name, body in (("llama-bench", "echo '[{\"avg_ts\": 50.0}]'"), ("llama-completion", "exit 0")):
        (folder / "bin" / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / "bin" / name).chmod(0o755)
    source = {"name": "llama.cpp", "commit": "0" * 40, "origin": "git"}
    manifest = {"variant": "v", "hash": "0123456789ab", "source": source, "toolchain": {"name": "gcc"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (root / "dist" / "v").symlink_to(Path(".builds") / folder.name)


def test_bench_on_a_users_model_stores_it_by_identity_with_the_hardware_and_says_its_pairs(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    _published(root)
    model = tmp_path / "my models ü" / "mine.gguf"
    model.parent.mkdir()
    write_gguf(model)
    out = run(
        root, "bench", "v", "--model", f"m={model}", "--suite", "e2e", "--threads", "1", "--reps", "auto"
    )
    assert out.code == 0, out.err
    assert "--reps auto:" in out.out and "3 runs" in out.out and "within ±3%" in out.out
    assert "cannot read which tensor types its source defines" in out.err  # no source mirror here
    with results.connect(root / ".variant" / "results.sqlite") as con:
        (hw,) = [results.run_hardware(r) for r in con.execute("SELECT * FROM runs")]
        params = [json.loads(r["params"]) for r in con.execute("SELECT params FROM measurements")]
        text = " ".join(str(tuple(r)) for r in con.execute("SELECT * FROM measurements"))
        text += " ".join(str(tuple(r)) for r in con.execute("SELECT command FROM runs"))
    assert hw is not None and list(hw["storage"]) == ["mine.gguf"]
    assert {p["model"] for p in params} == {"m"} and len({p["model_id"] for p in params}) == 1
    assert str(model.parent) not in text and str(model.parent) not in json.dumps(hw, ensure_ascii=False)


def test_bench_refuses_bad_model_input_before_anything_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Any]
) -> None:
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    _published(root)
    one, other = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for path, kv in ((one, None), (other, {"general.name": "another"})):
        path.parent.mkdir()
        write_gguf(path, kv=kv)
    monkeypatch.setattr(topology, "mem_available", lambda root=Path("/"): 1000)
    out = run(root, "bench", "v", "--model", str(one), "--suite", "load", "--load-mode", "none")
    assert out.code == 2 and "load mode none holds the whole model in memory: m is" in out.err
    out = run(root, "bench", "v", "--model", str(one), "--model", str(other), "--suite", "e2e")
    assert out.code == 2 and 'two different models are labelled "m"' in out.err
    db = root / ".variant" / "results.sqlite"
    if db.exists():
        with results.connect(db) as con:
            assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_a_programs_timeout_on_a_users_model_grows_with_its_size() -> None:
    from builder.models import support

    assert support.timeout_for(None, 120.0) == 120.0
    assert support.timeout_for(_own("small", GIB // 2), 120.0) == 120.0  # never below the base
    assert support.timeout_for(_own("big", 400 * GIB), 120.0) == 60 + 30 * 400


def test_the_stored_command_names_each_model_by_label_not_path(tmp_path: Path) -> None:
    from builder.cli import options
    from builder.models import own

    folder = tmp_path / "my models ü"
    folder.mkdir()
    parts = write_gguf(folder / "r1.gguf", split_max_tensors=1)
    plain = folder / "q.gguf"
    write_gguf(plain)
    mine = (own.load("r1", parts[1]), own.load("q", plain))
    argv = ["bench", "v", "--model", f"r1={parts[1]}", f"--model={plain}", "--model", "q", "--reps", "3"]
    command = options.recorded(argv, mine)
    assert command == "variant bench v --model r1 --model=q --model q --reps 3"
    assert str(folder) not in command
