"""`variant smoke`: a variant alone and against its default baseline, output comparison, reruns, forks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.errors import SpecError
from builder.layout import Layout
from builder.models import installed
from builder.smoke import baseline, forksmoke, smoke

from .conftest import Catalogue, Outcome
from .fakes import make_patch

Run = Callable[..., Outcome]


def _by_detail(out: str, start: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in json.loads(out) if str(c["detail"]).startswith(start))
    return found


def test_a_patched_variant_smokes_alone_and_compares_once_its_baseline_is_built(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    sdir = catalogue.series("same")
    make_patch(catalogue.upstream.path, sdir, name="same", old="return 0; }", new="return 0; /* same */ }")
    catalogue.variant("plain", 'targets = ["llama-simple", "test-barrier"]\n')
    catalogue.variant("patched", 'targets = ["llama-simple", "test-barrier"]\npatches = ["same"]\n')
    assert run(catalogue.root, "build", "patched").code == 0
    # The user's own command, right after its build: smoked alone, and it says why it compared nothing.
    alone = run(catalogue.root, "smoke", "patched", "--json")
    assert alone.code == 0, alone.out + alone.err
    note = _by_detail(alone.out, "greedy output not compared")
    assert note["ok"] and "its default baseline plain is not built" in str(note["detail"])
    assert "--build-baseline" in str(note["detail"]) and not (catalogue.dist / "plain").exists()
    assert {c["variant"] for c in json.loads(alone.out)} == {"patched"}
    # An explicit baseline that is not built is the user's mistake: exit 2, named.
    named = run(catalogue.root, "smoke", "patched", "--baseline", "plain")
    assert named.code == 2 and "plain is not built" in named.err
    both = run(catalogue.root, "smoke", "patched", "--build-baseline", "--json")
    assert both.code == 0, both.out + both.err
    assert "building plain, the baseline of patched" in both.err and (catalogue.dist / "plain").exists()
    same = _by_detail(both.out, "greedy output vs plain")
    assert same["ok"] and str(same["detail"]).startswith(
        "greedy output vs plain (its default baseline): identical"
    )
    given = run(catalogue.root, "smoke", "patched", "--baseline", "plain", "--json")
    assert _by_detail(given.out, "greedy output vs plain")["detail"].startswith(
        "greedy output vs plain (--baseline): identical"
    )


def test_a_failed_smoke_names_its_failing_rows_on_stderr_even_with_json(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("other", 'targets = ["llama-other"]\n')
    assert run(catalogue.root, "build", "other").code == 0
    res = run(catalogue.root, "smoke", "other", "--json")
    assert res.code == 1 and json.loads(res.out)[0]["ok"] is False
    assert "smoke: 1 of 1 checks failed:" in res.err
    assert "FAIL  other -: none of the smoke programs" in res.err


def test_perf_report_rows_keep_the_symbol_and_drop_the_columns_after_it() -> None:
    report = (
        "    48.90%  [.] three_tbl_impl_1536_1536<1, 1536>                       -      -\n"
        "    12.00%  [.] qgemm_lut_t1_int8_m256_k4096_n1_b4\n"
        "     5.13%  [k] handle_mm_fault   -   -\n"
    )
    assert forksmoke.perf_rows(report) == [
        (48.90, "three_tbl_impl_1536_1536<1, 1536>"),
        (12.00, "qgemm_lut_t1_int8_m256_k4096_n1_b4"),
        (5.13, "handle_mm_fault"),
    ]


def _losing_completion(tmp_path: Path, lose: int = 0, runs: tuple[int, ...] = ()) -> installed.Installed:
    """A llama-completion whose first `lose` runs, and the runs numbered in `runs`, lose their log's
    tail (exit 0, no perf line)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    count = tmp_path / "runs"
    count.write_text("0")
    script = bindir / "llama-completion"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(($(cat "{count}") + 1)); echo $n > "{count}"\n'
        'echo "the model is fast and sure"\n'
        f'case " {" ".join(map(str, runs))} " in *" $n "*) exit 0;; esac\n'
        f'[ $n -gt {lose} ] && echo "common_perf_print: load time = 1 ms" >&2\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    return installed.Installed("v", bindir, {})


def test_runs_that_lose_the_logs_tail_are_drawn_again_and_counted(tmp_path: Path) -> None:
    inst = _losing_completion(tmp_path, lose=5)  # 3 draws (the flaky smoke's) gave up here
    c, out = smoke._run(inst, "llama-completion", ["-n", "24"], end=smoke.COMPLETION_END)
    assert c.ok, c
    assert "(5 earlier runs lost the log's tail and were drawn again)" in c.detail
    assert "the model is fast" in out


def test_a_load_mode_says_how_many_runs_were_drawn_again(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    inst = _losing_completion(tmp_path, lose=1)  # the default load's first run: not the mode's
    (plain,) = smoke.load_mode_checks(inst, model, ("none",))
    assert plain.ok and plain.detail == "load mode none: greedy output identical to the default load", plain
    inst = _losing_completion(tmp_path / "again", runs=(2,))  # the first run with --load-mode none
    (checked,) = smoke.load_mode_checks(inst, model, ("none",))
    assert checked.ok and checked.detail.endswith("(1 earlier run lost the log's tail and was drawn again)")


def test_a_program_whose_every_run_loses_its_tail_fails_naming_it(tmp_path: Path) -> None:
    inst = _losing_completion(tmp_path, lose=smoke.ATTEMPTS)
    c, out = smoke._run(inst, "llama-completion", [], end=smoke.COMPLETION_END)
    assert not c.ok and out == ""
    assert (
        c.detail
        == f"output incomplete in {smoke.ATTEMPTS} runs (no 'common_perf_print:': the log lost its tail)"
    )


def test_default_baseline_is_the_variant_without_its_patches(catalogue: Catalogue) -> None:
    sdir = catalogue.series("kind")
    make_patch(catalogue.upstream.path, sdir, name="k", old="return 0; }", new="return 1; }")
    catalogue.variant("plain", "[cmake]\nGGML_OPENMP = false\n")
    catalogue.variant("other", "[cmake]\nGGML_OPENMP = true\n")
    catalogue.variant("patched", '[cmake]\nGGML_OPENMP = false\npatches = ["kind"]\n')
    layout = Layout.at(catalogue.root)
    # A classic slip: "patches" written after [cmake] lands in that table, and is refused there.
    with pytest.raises(SpecError, match=r"cmake\.patches: expected a boolean, integer or string"):
        baseline.default_baseline(layout, "patched")
    catalogue.variant("patched", 'patches = ["kind"]\n[cmake]\nGGML_OPENMP = false\n')
    assert baseline.default_baseline(layout, "patched") == "plain"
    assert baseline.default_baseline(layout, "plain") is None


def test_output_comparison_exact_for_same_compiler_tolerant_across() -> None:
    def inst(name: str, cc: str) -> installed.Installed:
        return installed.Installed(name, Path("/nonexistent"), {"toolchain": {"cc_version": cc}})

    gcc, gcc2, clang = inst("a", "gcc 12"), inst("b", "gcc 12"), inst("c", "clang 19")
    assert smoke.compare_outputs(gcc, "abcdefgh", gcc2, "abcdefgh").ok
    assert not smoke.compare_outputs(gcc, "abcdefgh", gcc2, "abcdefgX").ok
    assert smoke.compare_outputs(gcc, "abcdefgh", clang, "abcdeXXX").ok  # 5/8 >= 50%
    bad = smoke.compare_outputs(gcc, "abcdefgh", clang, "aXXXXXXX")
    assert not bad.ok and "tolerance: 50% common prefix" in bad.detail


def test_smoke_reruns_a_completion_whose_log_lost_its_tail(tmp_path: Path) -> None:
    """llama-completion's asynchronous log can drop its end at exit: rerun, then give up clearly."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "llama-completion"
    # prints its text; the end marker only from the second run on (a counter file)
    tool.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {tmp_path}/count 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/count\n"
        'echo "the text"\n'
        f'[ "$n" -ge 1 ] && [ ! -e {tmp_path}/never ] && echo "{smoke.COMPLETION_END} done" >&2\n'
        "exit 0\n"
    )
    tool.chmod(0o755)
    inst = installed.Installed("v", bin_dir, {})
    check, out = smoke._run(inst, "llama-completion", [], end=smoke.COMPLETION_END)
    assert check.ok and out == "the text\n"
    assert (tmp_path / "count").read_text().strip() == "2"  # one rerun

    (tmp_path / "never").touch()
    check, out = smoke._run(inst, "llama-completion", [], end=smoke.COMPLETION_END)
    assert not check.ok and out == ""
    assert check.detail.startswith(f"output incomplete in {smoke.ATTEMPTS} runs")
    assert (tmp_path / "count").read_text().strip() == str(2 + smoke.ATTEMPTS)


def test_fork_outputs_are_read_in_every_forks_dialect() -> None:
    from builder.models.installed import llama_bench_rows
    from builder.smoke import forksmoke

    # perplexity: upstream and the 2024 forks, and ik_llama.cpp's longer line
    lines = {
        "Final estimate: PPL = 618.4686 +/- 32.65665": 618.4686,
        "Final estimate: PPL over 4 chunks for n_ctx=128 = 470.2843 +/- 23.95499": 470.2843,
    }
    for line, value in lines.items():
        found = forksmoke.PPL.search("noise\n" + line + "\n")
        assert found and float(found[1]) == value
    # llama-bench -o json: an array spread over lines (ik's has no jsonl), after log noise
    out = 'log [brackets]\n[\n  {\n    "n_gen": 0, "avg_ts": 10.5\n  },\n  {"n_gen": 4, "avg_ts": 2.5}\n]\n'
    assert llama_bench_rows(out) == [
        {"n_gen": 0, "avg_ts": 10.5},
        {"n_gen": 4, "avg_ts": 2.5},
    ]
    assert llama_bench_rows("no json at all") == []
    # perf report --stdio lines, with the demangled C++ names the forks' kernels have
    report = (
        "    67.30%  [.] qgemm_lut_t1_int8_m256_k4096_n1_b4\n"
        "     7.69%  [.] (anonymous namespace)::mul_mat_qY_K_q8_K_T<(anonymous namespace)::IQ4K, 1>\n"
        "     5.13%  [k] handle_mm_fault\n"
    )
    rows = [m.groups() for line in report.splitlines() if (m := forksmoke.PERF_LINE.match(line))]
    assert [(float(p), s[:20]) for p, s in rows] == [
        (67.30, "qgemm_lut_t1_int8_m2"),
        (7.69, "(anonymous namespace"),
        (5.13, "handle_mm_fault"),
    ]
