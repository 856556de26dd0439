"""Folding, grouping and flame graphs on a recorded perf run (tests/fixtures: a real `perf script`)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.profile import flame, groups, session, stacks, write
from builder.store.results import Measurement

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
    # a switch's leaf is always the scheduler; the table says where the thread entered the kernel
    assert groups.top(events["context-switches"], 1)[0].name in ("schedule", "__schedule")
    assert groups.top(groups.user_side(events["context-switches"]), 1)[0].name == "__sched_yield"
    assert "| context-switches | 20 switches | `__sched_yield` " in write.events_table(events)


def test_uftrace_stacks_get_the_program_as_root_and_group_like_perf_ones() -> None:
    # `uftrace dump --flame-graph --sample-time=1us` of uftrace-clang's llama-bench, tg at t=2 (OpenMP),
    # recorded with -t 5us: its 100 heaviest stacks plus some of its waits
    lines = (FIXTURES / "uftrace-flame-graph-t2.txt").read_text().splitlines()
    p = stacks.fold_uftrace(lines, (FIXTURES / "uftrace-info.txt").read_text())
    assert p.unit == "us" and {s[0] for s in p.stacks} == {"llama-bench"}
    assert p.total == sum(int(ln.rsplit(" ", 1)[1]) for ln in lines)
    rows = {f.name: f for f in groups.functions(p)}
    # the first traced function is a function, not a root to leave out; the program is the root
    assert "llama-bench" not in rows and rows["ggml_graph_compute_thread"].total_weight > 0.5 * p.total
    share = groups.shares(p)
    assert share["matmul / vec-dot kernels"] > 0.6 * p.total  # mul_mat (vec_dot calls < 5 us fold in)
    assert share["barrier and thread sync"] > 0  # __kmpc_barrier, linux:schedule
    assert groups.group_of(("llama-bench", "ggml_graph_compute_thread", "linux:schedule")) == (
        "barrier and thread sync"
    )
    assert stacks.fold_uftrace(["main;f 3"], "").stacks == {("uftrace", "main", "f"): 3}


def test_groups_partition_the_profile_by_innermost_matching_frame() -> None:
    p = stacks.fold_perf_script(SPIN_T4.read_text().splitlines())
    share = groups.shares(p)
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
    from builder.bench.case import Case
    from builder.errors import UserError

    def case(label: str) -> Case:
        return Case("e2e", label, lambda inst: [])

    cases = [
        case("e2e q8_0 pp t=2"),
        case("e2e q8_0 tg t=2"),
        case("e2e q8_0 pp t=4"),
        case("e2e q8_0 tg t=4"),
    ]
    assert session.pick(cases, ("t=4",)).label == "e2e q8_0 tg t=4"
    # words, not substrings: t=1 is not t=16, and 8 is no case's word
    assert session.pick([case("e2e q8_0 tg t=16"), case("e2e q8_0 tg t=1")], ("t=1",)).label.endswith("t=1")
    with pytest.raises(UserError, match="matches no case"):
        session.pick(cases, ("8",))
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
    from builder.layout import Layout
    from builder.results import report
    from builder.store import results

    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    layout = Layout.at(root)
    manifest = {
        "variant": "a",
        "hash": "h" * 64,
        "source": {"name": "llama.cpp", "commit": "c" * 40, "origin": "pypi"},
        "toolchain": {"name": "gcc"},
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
    text = report.write(layout, ["a"], tmp_path / "out", say=lambda _m: None, run_id=run).read_text()
    assert "## Profiles (`variant profile`)" in text
    share = 100 * barrier["value"] / cpu_total
    assert f"| barrier and thread sync | {share:.1f}% |" in text
    assert "[flame graph](profiles/a/flame.svg)" in text
    assert (tmp_path / "out" / "profiles" / "a" / "flame.svg").is_file()
    assert not (tmp_path / "out" / "profiles" / "a" / "perf.data").exists()


def test_a_variant_is_profiled_with_the_tool_it_was_built_for_or_refused_saying_why() -> None:
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


class _Fake:
    """A profiling session around fake installed variants: everything but perf itself is real."""

    def __init__(self, root: Path, monkeypatch: Any) -> None:
        from contextlib import contextmanager

        from builder.layout import Layout
        from builder.models.installed import Installed

        (root / "variants").mkdir(parents=True)
        self.layout = Layout.at(root)
        self.calls = 0
        self.fail_at: int | None = None
        self.error: BaseException = RuntimeError("perf died")

        def inst(name: str) -> Installed:
            manifest = {"variant": name, "hash": name[0] * 64, "instrument": "perf", "patches": [],
                        "source": {"commit": "c" * 40, "origin": "pypi"}}  # fmt: skip
            return Installed(name, root / "dist" / name / "bin", manifest)

        @contextmanager
        def held_all(layout: Any, names: list[str]) -> Iterator[list[Installed]]:
            yield [inst(n) for n in names]

        def record_one(layout: Any, i: Installed, tool: str, case_of: Any, t: int, timeout: float,
                       folder: Path, say: Any, memory_max: int | None = None,
                       ) -> session.Profiled:  # fmt: skip
            self.calls += 1
            if self.calls == self.fail_at:
                raise self.error
            p = dataclasses.replace(_spin_profiled(folder), variant=i.name)
            write.write(folder, f"{i.name}: {p.case}", "perf", p.events)
            return p

        monkeypatch.setattr(session, "held_all", held_all)
        monkeypatch.setattr(session, "why_not", lambda suite, insts: None)
        monkeypatch.setattr(session, "record_one", record_one)

    def run(self, *names: str, vs: bool = True) -> session.ProfileRun:
        return session.run(
            self.layout, list(names), vs=vs, tool=None, suite="e2e", wanted=(), threads=4, type_="q8_0",
            timeout=10, out=None, command="variant profile", say=lambda _m: None,
        )  # fmt: skip

    def stored(self) -> tuple[list[int], list[str]]:
        from builder.store import results

        db = self.layout.home / "results.sqlite"
        runs = []
        if db.exists():
            with results.connect(db) as con:
                runs = [r[0] for r in con.execute("SELECT id FROM runs")]
        root = self.layout.profiles()
        return runs, sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_profile_run_is_stored_whole_or_not_at_all(tmp_path: Path, monkeypatch: Any) -> None:
    from builder.store import results

    fake = _Fake(tmp_path / "cat", monkeypatch)
    fake.fail_at = 2  # the candidate's recording fails
    with pytest.raises(RuntimeError, match="perf died"):
        fake.run("base", "cand")
    assert fake.stored() == ([], [])
    fake.calls, fake.error = 0, KeyboardInterrupt()  # interrupted while recording the candidate
    with pytest.raises(KeyboardInterrupt):
        fake.run("base", "cand")
    assert fake.stored() == ([], [])

    real_record, rows = results.record, [0]

    def record_then_fail(*args: Any, **kw: Any) -> None:  # the database fails halfway through the rows
        rows[0] += 1
        if rows[0] == 5:
            raise OSError("disk full")
        real_record(*args, **kw)

    fake.calls, fake.fail_at = 0, None
    monkeypatch.setattr(results, "record", record_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fake.run("base", "cand")
    assert fake.stored() == ([], [])
    monkeypatch.setattr(results, "record", real_record)

    done = fake.run("base", "cand")
    assert fake.stored() == ([done.run_id], [str(done.run_id)])
    assert {f.name for f in done.compared} == {"groups-vs.md", "flame-vs.svg", "flame-vs-baseline.svg"}
    assert json.loads((done.folder / "vs.json").read_text())["baseline"] == "base"
    with results.connect(fake.layout.home / "results.sqlite") as con:
        # numbers taken under perf: a report or comparison without --run means the newest benchmark
        assert results.latest_run_with(con, ["base", "cand"], None) is None
        assert results.latest_run_with(con, ["base", "cand"], "profile") == done.run_id


def test_the_report_names_the_profiled_pair_in_its_own_order(tmp_path: Path, monkeypatch: Any) -> None:
    from builder.results import report

    fake = _Fake(tmp_path / "cat", monkeypatch)
    done = fake.run("base", "cand")
    for name in ("base", "cand"):
        (fake.layout.dist / name).mkdir(parents=True)
        manifest: dict[str, Any] = {
            "variant": name,
            "hash": "h" * 64,
            "patches": [],
            "source": {"name": "llama.cpp", "commit": "c" * 40, "origin": "pypi"},
            "toolchain": {"name": "gcc"},
        }
        (fake.layout.dist / name / "manifest.json").write_text(json.dumps(manifest))
    say = lambda _m: None  # noqa: E731
    text = report.write(fake.layout, ["cand", "base"], tmp_path / "r", say, run_id=done.run_id).read_text()
    assert (
        "red: a larger share in cand than in base" in text
        and (tmp_path / "r/profiles/flame-vs.svg").is_file()
    )
    assert not list((tmp_path / "r").rglob("*folded.txt"))  # what a person reads, not the stacks
    alone = report.write(fake.layout, ["base"], tmp_path / "one", say, run_id=done.run_id).read_text()
    assert "## Profiles" in alone and "differential" not in alone
