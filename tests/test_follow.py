"""`variant bisect` on fake upstream lines: real git, real CMake builds of the fake tree, real benches."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.follow import bisect as bisect_mod
from builder.follow import probe
from builder.follow.probe import Step

from . import fakes
from .conftest import Catalogue, Outcome, write_sources

SLOW_AT, TEXT_AT = 11, 6
PLANTS = {
    # the planted slowdown: test-barrier's ns per node doubles
    SLOW_AT: ("tools/test-barrier.c", 'printf("graph-compute: 1234.5', 'printf("graph-compute: 2469.0'),
    # the greedy text changes
    TEXT_AT: ("tools/llama-simple.cpp", "llama-simple ok", "llama-simple OK"),
}


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("line") / "upstream"
    return path, fakes.make_line(path, 16, PLANTS)


def _catalogue(catalogue: Catalogue, line: tuple[Path, list[str]]) -> list[str]:
    path, commits = line
    write_sources(catalogue.root, str(path), commits[-1])
    catalogue.variant("v", 'targets = ["test-barrier", "llama-simple"]\n')
    return commits


def test_next_index_halves_the_open_range_and_steps_around_skips() -> None:
    assert bisect_mod.next_index(16, {}) == 7
    assert bisect_mod.next_index(16, {7: "good"}) == 11
    assert bisect_mod.next_index(16, {7: "skip"}) == 8  # the nearest untested to the middle
    assert bisect_mod.next_index(16, {7: "good", 11: "bad", 9: "good", 10: "good"}) is None
    assert bisect_mod.bounds(16, {7: "good", 11: "bad", 9: "good", 10: "good"}) == (10, 11)
    assert bisect_mod.next_index(3, {1: "skip"}) is None


def test_bisect_finds_the_planted_slowdown_in_at_most_five_builds_then_the_text_change(
    catalogue: Catalogue, line: tuple[Path, list[str]], run: Callable[..., Outcome]
) -> None:
    commits = _catalogue(catalogue, line)
    good, bad = commits[0][:10], commits[-1][:10]
    args = ["bisect", "v", "--good", good, "--bad", bad, "--metric", "barrier:ns_per_node", "--threads", "1"]
    res = run(catalogue.root, *args, "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["first_bad"] == commits[SLOW_AT][:12] and out["versions"] == 16, out
    assert out["builds"] <= 5, out  # the good end and four midpoints
    bad_steps = [s for s in out["steps"] if s["verdict"] == "bad"]
    assert bad_steps and all(s["figures"]["speedup"] == pytest.approx(0.5, rel=0.01) for s in bad_steps)
    assert (catalogue.dist / f"v@{commits[SLOW_AT][:12]}" / "bin" / "test-barrier").is_file()

    # Done: the same command answers again from its state, building nothing.
    again = run(catalogue.root, *args)
    assert again.code == 0 and f"first bad version: {commits[SLOW_AT][:12]}" in again.out, again.err
    assert "0 build(s)" in again.out and "**first bad**" in again.out

    # The greedy text changed at another commit: --smoke finds that one.
    res = run(catalogue.root, "bisect", "v", "--good", good, "--bad", bad, "--smoke", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["first_bad"] == commits[TEXT_AT][:12], out
    assert any("greedy text differs" in s["why"] for s in out["steps"]), out["steps"]


def test_an_interrupted_bisect_resumes_and_a_midpoint_that_does_not_build_is_skipped(
    catalogue: Catalogue, tmp_path: Path, run: Callable[..., Outcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    # c2 breaks the build, c3 mends it, c4 makes test-barrier fail
    path = tmp_path / "broken"
    kind, broken = "{ return 0; }", "{ return 0 }"
    commits = fakes.make_line(path, 6, {
        2: ("ggml/ggml.c", kind, broken),
        3: ("ggml/ggml.c", broken, kind),
        4: ("tools/test-barrier.c", "    return 0;\n}", "    return strcmp(NAME, \"test-barrier\") == 0;\n}"),
    })  # fmt: skip
    write_sources(catalogue.root, str(path), commits[-1])
    catalogue.variant("v", 'targets = ["test-barrier", "llama-simple"]\n')
    args = ["bisect", "v", "--good", commits[0], "--bad", commits[-1], "--run", "test-barrier 1 1"]

    real_judge = probe.judge
    calls: list[str] = []

    def interrupted(*a: object, **k: object) -> Step:
        calls.append("judge")
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_judge(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(bisect_mod, "judge", interrupted)
    res = run(catalogue.root, *args)
    assert res.code == 130, res.err
    assert "is skip: the build failed" in res.err  # c2, said
    state = json.loads((catalogue.home / "bisect" / "v.json").read_text())
    assert [s["verdict"] for s in state["steps"]] == ["skip", "good"], state
    monkeypatch.setattr(bisect_mod, "judge", real_judge)

    res = run(catalogue.root, *args, "--json")
    assert res.code == 0, res.err
    assert "resuming v from" in res.err and "(2 version(s) judged)" in res.err
    out = json.loads(res.out)
    assert out["first_bad"] == commits[4][:12], out
    assert [s["verdict"] for s in out["steps"]] == ["skip", "good", "bad"], out["steps"]
    assert out["steps"][0]["version"] == commits[2][:12] and "the build failed" in out["steps"][0]["why"]


def test_bisect_refuses_bad_refs_before_building(
    catalogue: Catalogue, line: tuple[Path, list[str]], run: Callable[..., Outcome]
) -> None:
    commits = _catalogue(catalogue, line)
    good, bad = commits[0][:10], commits[-1][:10]
    cases = {
        ("--good", "nosuchref", "--bad", bad, "--smoke"): "no tag or commit 'nosuchref'",
        ("--good", good, "--bad", good, "--smoke"): "are one commit",
        ("--good", bad, "--bad", good, "--smoke"): "is newer than",
        ("--good", good, "--bad", bad): "give one of --metric SUITE:METRIC, --smoke or --run",
        ("--good", good, "--bad", bad, "--metric", "barrier"): "expected SUITE:METRIC",
        ("--good", good, "--bad", bad, "--metric", "barier:ns_per_node"): 'did you mean "barrier"',
        ("--good", good, "--bad", bad, "--smoke", "--run", "true"): "(got --smoke, --run)",
        ("--good", good, "--bad", bad, "--metric", "barrier:ns_per_nod"): 'did you mean "ns_per_node"',
        ("--good", good, "--bad", bad, "--smoke", "--threads", "2"): "--threads: only with --metric",
    }
    for given, message in cases.items():
        res = run(catalogue.root, "bisect", "v", *given)
        assert res.code == 2 and message in res.err, (given, res.err)
    assert not catalogue.dist.exists() or not any(catalogue.dist.iterdir())
    res = run(catalogue.root, "bisect", "v@abc", "--good", good, "--bad", bad, "--smoke")
    assert res.code == 2 and "bisect the variant itself" in res.err


def test_history_draws_the_metric_across_versions_marks_the_step_and_reuses_stored_runs(
    catalogue: Catalogue, line: tuple[Path, list[str]], run: Callable[..., Outcome], tmp_path: Path
) -> None:
    commits = _catalogue(catalogue, line)
    out = tmp_path / "hist"
    args = ["history", "v", "--metric", "barrier:ns_per_node", "--threads", "1", "--from", commits[0][:8],
            "--every", "5", "--out", str(out)]  # fmt: skip
    res = run(catalogue.root, *args, "--json")
    assert res.code == 0, res.err
    points = json.loads(res.out)["points"]
    assert [p["version"] for p in points] == [commits[k][:12] for k in (0, 5, 10, 15)]
    assert [p["step"] for p in points] == ["", "", "", "worse"], points
    assert [p["state"] for p in points] == ["measured"] * 4
    ratios = [p["ratio"]["median"] for p in points]  # against v at its pin, commit 15: slow
    assert ratios == pytest.approx([2.0, 2.0, 2.0, 1.0])
    assert all(p["build_seconds"] > 0 for p in points) and points[1]["ccache_hit_rate"] > 0.5
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| worse |" in (out / "history.md").read_text()

    # a run of the same two builds under another profile is no point of the history
    (catalogue.root / "profiles.toml").write_text('[other]\ndescription = "another profile"\n')
    last = f"v@{commits[15][:12]}"
    other = ["--suite", "barrier", "--threads", "1", "--reps", "2", "--profile", "other"]
    assert run(catalogue.root, "bench", last, "--vs", "v", *other).code == 0
    again = run(catalogue.root, *args)
    assert again.code == 0, again.err
    assert again.err.count("reusing run") == 4 and "steps beyond noise: " + commits[15][:12] in again.out
    assert f"reusing run {points[3]['run']}" in again.err
    res = run(catalogue.root, "history", "v", "--metric", "barrier:ns_per_node")
    assert res.code == 2 and "give --from REF" in res.err


def test_a_metric_runs_only_the_cases_that_measure_it(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    from builder.bench import profiles
    from builder.bench import runner as bench_mod
    from builder.errors import UserError
    from builder.layout import Layout
    from builder.store import results

    catalogue.variant("v", 'targets = ["llama-bench"]\n')
    assert run(catalogue.root, "build", "v").code == 0
    layout = Layout.at(catalogue.root)

    def bench(only: tuple[str, ...]) -> int:
        return bench_mod.run(layout, ["v"], baseline=None, suites=("e2e",), reps=1, threads=(1,),
                             profile=profiles.Profile(), command="test", say=print, only=only)  # fmt: skip

    run_id = bench(("tg",))
    with results.connect(layout.home / "results.sqlite") as con:
        metrics = {r["metric"] for r in results.rows(con, run_id, ["v"], "e2e")}
    # no pp_tps (nor its flops_per_token): its case did not run; the tg case's bytes per token did
    assert metrics == {"tg_tps", "cpu_s_per_token", "bytes_per_token", "flops_per_token"}, metrics
    with pytest.raises(UserError, match="no case of e2e has the words tg t=9"):
        bench(("tg", "t=9"))


def test_skips_next_to_the_bad_end_leave_candidates_and_a_bad_state_file_is_refused(
    catalogue: Catalogue, tmp_path: Path, run: Callable[..., Outcome]
) -> None:
    path = tmp_path / "broken"
    commits = fakes.make_line(path, 3, {1: ("ggml/ggml.c", "{ return 0; }", "{ return 0 }")})
    write_sources(catalogue.root, str(path), commits[-1])
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    args = ["bisect", "v", "--good", commits[0], "--bad", commits[-1], "--run", "test-barrier 1 1"]
    res = run(catalogue.root, *args)
    assert res.code == 0, res.err
    assert f"the first bad version is one of {commits[1][:12]}, {commits[2][:12]}" in res.out

    state = catalogue.home / "bisect" / "v.json"
    data = json.loads(state.read_text())
    assert data["done"] is True and [s["verdict"] for s in data["steps"]] == ["skip"]
    data["steps"][0]["verdict"] = "maybe"
    state.write_text(json.dumps(data))
    res = run(catalogue.root, *args)
    assert res.code == 2 and "steps[0]: expected a version inside the range" in res.err, res.err
    state.write_text("{ not json")
    res = run(catalogue.root, *args)
    assert res.code == 2 and "not a bisect state" in res.err and "--reset" in res.err
    assert run(catalogue.root, *args, "--reset").code == 0

    # an unfinished bisect of another test is not thrown away by a new one
    data = json.loads(state.read_text())
    data["done"], data["steps"] = False, []
    state.write_text(json.dumps(data))
    res = run(catalogue.root, "bisect", "v", "--good", commits[0], "--bad", commits[-1], "--smoke")
    assert res.code == 2 and "an unfinished bisect of v" in res.err, res.err


def test_a_step_is_where_the_medians_intervals_part_not_the_pairs_ranges() -> None:
    from builder.bench.stats import Summary, median_ci
    from builder.follow import trend
    from builder.source.versions import Version

    assert median_ci([1.0] * 3 + [5.0]) == (1.0, 5.0)  # up to 8 values: min and max
    noisy = [0.6, 1.4] + [1.0 + i / 100 for i in range(-4, 5)] * 2  # 20 pairs, ±40% apart, median ~1
    assert median_ci(noisy)[0] > 0.9 and median_ci(noisy)[1] < 1.1

    def point(k: int, med: float, ci: tuple[float, float]) -> trend.Point:
        v = Version(f"1.{k}", None, "")  # type: ignore[arg-type]
        return trend.Point(v, "measured", ratio=Summary(20, med, 0.5, 1.5), ci=ci)

    marked = trend.mark_steps(
        [point(0, 1.0, (0.97, 1.03)), point(1, 0.8, (0.78, 0.83)), point(2, 0.79, (0.75, 0.85)),
         point(3, 0.95, (0.84, 1.0))], 0.05,
    )  # fmt: skip
    # min-max ranges all overlap; the intervals part at 1.1 only (1.3 moves within 1.2's interval)
    assert [p.step for p in marked] == ["", "worse", "", ""]
