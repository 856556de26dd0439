"""Folding, grouping and flame graphs on a recorded perf run (tests/fixtures: a real `perf script`)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from builder.bench.results import Measurement
from builder.profile import flame, groups, session, stacks, write

from .conftest import Catalogue, Outcome

FIXTURES = Path(__file__).parent / "fixtures"
# perf record -e cpu-clock -F 499 --call-graph fp -- llama-bench -p 0 -n 64 -t 4 (openmp-off-gcc, the
# spin barrier, 4 threads on 2 CPUs), every 150th sample plus some kernel and page-fault ones.
SPIN_T4 = FIXTURES / "perf-script-spin-t4.txt"
# `variant profile perf-futex-gcc --suite e2e --threads 4` (perf record -e cpu-clock/freq=999/
# -e page-faults/period=1/ -e context-switches/period=1/ --call-graph fp): every 20th cpu-clock
# sample, every 150th page fault, every 700th context switch.
FUTEX_T4_EVENTS = FIXTURES / "perf-script-futex-t4-events.txt"


def test_perf_script_folds_root_first_weighted_by_period() -> None:
    text = SPIN_T4.read_text()
    p = stacks.fold_perf_script(text.splitlines())
    samples = text.count(" cpu-clock:")
    assert sum(1 for _ in p.stacks) <= samples and p.total == samples * 2004008
    faulted = next(s for s in p.stacks if s[-1] == "clear_page_erms")
    assert faulted[0] == "llama-bench" and faulted[1:3] == ("__libc_start_call_main", "llama_bench")
    assert faulted.index("asm_exc_page_fault") < faulted.index("clear_page_erms")
    # folded text round-trips
    assert stacks.parse_folded(p.folded().splitlines(), unit="ns") == p


def test_each_software_event_folds_into_its_own_profile() -> None:
    text = FUTEX_T4_EVENTS.read_text()
    events = stacks.fold_perf_events(text.splitlines())
    assert {e: p.unit for e, p in events.items()} == {
        "cpu-clock": "ns", "page-faults": "faults", "context-switches": "switches"
    }  # fmt: skip
    # period 1: one sample is one fault or one switch
    assert events["page-faults"].total == text.count(" page-faults/period=1/:")
    assert events["context-switches"].total == text.count(" context-switches/period=1/:")
    assert events["cpu-clock"].total == text.count(" cpu-clock/freq=999/:") * 1001001
    assert stacks.fold_perf_script(text.splitlines()) == events["cpu-clock"]
    # the futex barrier's switches: it yields (sched_yield) far more often than it sleeps on the futex
    switches = groups.shares(events["context-switches"])
    assert switches["barrier and thread sync"] >= 0.9 * events["context-switches"].total
    yields = sum(w for s, w in events["context-switches"].stacks.items() if "__sched_yield" in s)
    assert yields > 0.8 * events["context-switches"].total
    faults = groups.shares(events["page-faults"])
    assert faults["memory and page faults"] > 0.5 * events["page-faults"].total


def test_groups_partition_the_profile_by_innermost_matching_frame() -> None:
    p = stacks.fold_perf_script(SPIN_T4.read_text().splitlines())
    share = groups.shares(p)
    assert sum(share.values()) == p.total
    # the spin barrier oversubscribed: most of the CPU goes to ggml_barrier
    assert share["barrier and thread sync"] > 0.8 * p.total
    assert share["memory and page faults"] > 0 and share["matmul / vec-dot kernels"] > 0
    assert groups.group_of(("llama-bench", "ggml_barrier", "futex_wait")) == "barrier and thread sync"
    assert groups.group_of(("x", "llama_model_load", "memcpy")) == "memory and page faults"
    assert groups.group_of(("x", "llama_model_load", "a_helper_of_no_group")) == "model loading"
    assert groups.group_of(("x", "main")) == groups.OTHER
    # OpenMP: libgomp (no symbols) spinning is sync; an op no group names, run inside it, is not
    gomp = ("llama-bench", "[unknown]", "[libgomp.so.1.0.0]")
    assert groups.group_of(gomp) == "barrier and thread sync"
    op = (*gomp, "ggml_graph_compute_thread.isra.0", "ggml_compute_forward_flash_attn_ext")
    assert groups.group_of(op) == groups.OTHER
    assert groups.group_of((*op, "ggml_vec_dot_f16")) == "matmul / vec-dot kernels"


def test_top_functions_self_and_total() -> None:
    p = stacks.Profile(
        {("c", "main", "f", "g"): 3, ("c", "main", "f"): 2, ("c", "main", "h", "g"): 5}, "samples"
    )
    rows = {f.name: f for f in groups.functions(p)}
    assert (rows["g"].self_weight, rows["g"].total_weight) == (8, 8)
    assert (rows["f"].self_weight, rows["f"].total_weight) == (2, 5)
    assert (rows["main"].self_weight, rows["main"].total_weight) == (0, 10)
    assert "c" not in rows  # the comm root is not a function
    assert [f.name for f in groups.top(p, 2)] == ["g", "f"]


def test_flame_graph_is_valid_svg_with_a_tooltip_per_frame_and_a_differential_mode() -> None:
    p = stacks.fold_perf_script(SPIN_T4.read_text().splitlines())
    doc = ET.fromstring(flame.svg(p, "spin t=4"))
    titles = [t.text or "" for t in doc.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("ggml_barrier (") for t in titles)
    rects = list(doc.iter("{http://www.w3.org/2000/svg}rect"))
    assert all(0 <= float(r.get("x", "-1")) <= flame.WIDTH for r in rects)
    moved = stacks.Profile({("c", "a"): 1, ("c", "b"): 3}, "samples")
    base = stacks.Profile({("c", "a"): 3, ("c", "b"): 1}, "samples")
    diff = ET.fromstring(flame.svg(moved, "diff", baseline=base))
    tips = {t.text.split(" ")[0]: t.text for t in diff.iter("{http://www.w3.org/2000/svg}title") if t.text}
    assert "+50.00 points" in tips["b"] and "-50.00 points" in tips["a"]
    # at the baseline's widths, colours still tell the change from baseline to candidate
    inverted = ET.fromstring(flame.svg(base, "diff", baseline=moved, invert=True))
    tips = {
        t.text.split(" ")[0]: t.text for t in inverted.iter("{http://www.w3.org/2000/svg}title") if t.text
    }
    assert "+50.00 points" in tips["b"] and "-50.00 points" in tips["a"]
    gone = stacks.Profile({("c", "a"): 1}, "samples")  # b vanished from the candidate
    tips = {
        t.text.split(" ")[0]: t.text
        for t in ET.fromstring(flame.svg(base, "d", baseline=gone, invert=True)).iter(
            "{http://www.w3.org/2000/svg}title"
        )
        if t.text
    }
    assert "-25.00 points" in tips["b"]


def test_pick_takes_the_case_holding_every_word_and_prefers_generation() -> None:
    from builder.errors import UserError
    from builder.profile import session

    def case(label: str) -> session.Case:
        return session.Case("e2e", label, lambda inst: [])

    cases = [
        case("e2e q8_0 pp t=2"),
        case("e2e q8_0 tg t=2"),
        case("e2e q8_0 pp t=4"),
        case("e2e q8_0 tg t=4"),
    ]
    assert session.pick(cases, ("t=4",)).label == "e2e q8_0 tg t=4"
    assert session.pick(cases, ("pp", "t=4")).label == "e2e q8_0 pp t=4"
    try:
        session.pick(cases, ("t=8",))
    except UserError as exc:
        assert "e2e q8_0 tg t=4" in str(exc)
    else:
        raise AssertionError("no case for t=8 must be a user error")
    table = write.groups_table(
        [("a", stacks.Profile({("c", "ggml_barrier"): 3, ("c", "main"): 1}, "samples"))]
    )
    assert (
        "| barrier and thread sync | 75.0% (3 samples) |" in table
        and "| other | 25.0% (1 samples) |" in table
    )


def _spin_profiled(folder: Path) -> session.Profiled:
    events = {
        "cpu-clock": stacks.fold_perf_script(SPIN_T4.read_text().splitlines()),
        "page-faults": stacks.Profile({("llama-bench", "llama_model_load", "memcpy"): 40}, "faults"),
    }
    tg = Measurement("e2e", "tg_tps", "tokens/s", {"threads": 4}, 2.0, better="higher")
    return session.Profiled("a", "e2e q8_0 tg t=4", "perf", folder, events, (tg,))


def test_a_profile_becomes_files_rows_of_its_run_and_a_section_of_the_report(tmp_path: Path) -> None:
    from builder.bench import report, results
    from builder.layout import Layout

    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    layout = Layout.at(root)
    manifest = {
        "variant": "a",
        "hash": "h" * 64,
        "source": {"commit": "c" * 40, "origin": "pypi"},
        "patches": [],
    }
    (layout.dist / "a").mkdir(parents=True)
    (layout.dist / "a" / "manifest.json").write_text(json.dumps(manifest))
    with results.connect(layout.home / "results.sqlite") as con:
        run = results.start_run(con, "profile-perf", "variant profile a")
        p = _spin_profiled(layout.profiles(run) / "a")
        summary = write.write(p.folder, "a: e2e q8_0 tg t=4", "perf", p.events)
        for m in session.measurements(p):
            results.record(con, run, manifest, 0, m)
        rows = {
            (r["metric"], json.loads(r["params"]).get("group")): r
            for r in results.rows(con, run, ["a"], None)
        }
    assert {"flame.svg", "folded.txt", "groups.md", "top.md", "faults.svg", "faults.folded.txt"} <= set(
        summary["files"]
    )
    groups_md = (p.folder / "groups.md").read_text()
    assert "no hardware counters" in groups_md and "| page-faults | 40 faults | `memcpy` 100% |" in groups_md
    # one row per group, summing to the profile's CPU time; the events counted; the case's own number kept
    barrier = rows[("cpu_s", "barrier and thread sync")]
    cpu_total = sum(r["value"] for (metric, _g), r in rows.items() if metric == "cpu_s")
    assert abs(cpu_total - p.main.total / 1e9) < 1e-6 and barrier["value"] > 0.8 * cpu_total
    assert rows[("page_faults", None)]["value"] == 40
    assert rows[("tg_tps", None)]["suite"] == "profile" and "under perf" in rows[("tg_tps", None)]["note"]

    (p.folder / "perf.data").write_bytes(b"raw")  # the profiler's own data stays in the store
    text = report.write(layout, ["a"], tmp_path / "out", say=lambda _m: None).read_text()
    assert "## Profiles (`variant profile`)" in text
    share = 100 * barrier["value"] / cpu_total
    assert f"| barrier and thread sync | {share:.1f}% |" in text
    assert "[flame graph](profiles/a/flame.svg)" in text
    assert (tmp_path / "out" / "profiles" / "a" / "flame.svg").is_file()
    assert not (tmp_path / "out" / "profiles" / "a" / "perf.data").exists()


def test_a_variant_is_profiled_with_the_tool_it_was_built_for_or_refused_saying_why() -> None:
    import pytest

    from builder.errors import UserError
    from builder.profile.record import tool_for

    assert tool_for("perf", None, "perf-gcc") == "perf"
    assert tool_for("uftrace", None, "uftrace-clang") == "uftrace"
    with pytest.raises(UserError, match='futex-gcc is built with instrument = "none", for no profiler'):
        tool_for("none", None, "futex-gcc")
    with pytest.raises(UserError, match="--tool perf needs frame pointers") as exc:
        tool_for("uftrace", "perf", "uftrace-clang")
    assert exc.value.exit_code == 2
    with pytest.raises(UserError, match="--tool uftrace needs -finstrument-functions"):
        tool_for("perf", "uftrace", "perf-gcc")


def test_bad_profile_requests_exit_2_and_store_nothing(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    catalogue.variant("perf-x", 'toolchain = "gcc"\ninstrument = "perf"\n')
    asked = {
        ("profile", "perf-x", "--suite", "e2ee"): 'unknown suite "e2ee" (did you mean "e2e"?)',
        ("profile", "perf-x", "--vs", "perf-x"): "each variant is profiled once",
        ("profile", "perf-x", "perf-y", "--vs", "perf-z"): "--vs perf-z compares one variant with it; got 2",
        ("profile", "perf-x"): "perf-x is not built; run `variant build perf-x` first",
    }
    for args, message in asked.items():
        got = run(catalogue.root, *args)
        assert got.code == 2 and message in got.err, (args, got.err)
    profiles = catalogue.home / "profiles"
    assert not profiles.exists() or not any(profiles.iterdir())
    assert not (catalogue.home / "results.sqlite").exists()
