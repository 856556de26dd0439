"""`variant smoke` on the fake upstream: a variant smokes on its own; its baseline when there is one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.bench import forksmoke, installed, smoke

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
