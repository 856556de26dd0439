"""`variant smoke` on the fake upstream: a variant smokes on its own; its baseline when there is one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.bench import forksmoke

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
