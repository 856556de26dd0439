"""Folding, grouping and flame graphs on a recorded perf run (tests/fixtures: a real `perf script`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from builder.profile import flame, groups, stacks

FIXTURES = Path(__file__).parent / "fixtures"
# perf record -e cpu-clock -F 499 --call-graph fp -- llama-bench -p 0 -n 64 -t 4 (openmp-off-gcc, the
# spin barrier, 4 threads on 2 CPUs), every 150th sample plus some kernel and page-fault ones.
SPIN_T4 = FIXTURES / "perf-script-spin-t4.txt"


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
    table = session.groups_table(
        [("a", stacks.Profile({("c", "ggml_barrier"): 3, ("c", "main"): 1}, "samples"))]
    )
    assert "| barrier and thread sync | 75.0% |" in table and "| other | 25.0% |" in table
