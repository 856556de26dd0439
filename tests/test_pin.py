"""`variant pin`: a source's pin moved with the catalogue: series rebased (applied, upstreamed or in
conflict), sources.toml rewritten in that entry only, variants rebuilt and smoked; fake git line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from builder.source import pinfile
from builder.source.pinfile import Change

from . import fakes
from .conftest import REPO, Catalogue, Outcome, write_sources
from .test_patchflow import make_series

KIND = (
    "ggml/ggml.c",
    "int ggml_barrier_kind(void) { return 0; }",
    "int ggml_barrier_kind(void) { return 3; }",
)
TEXT = ("tools/llama-simple.cpp", "llama-simple ok", "llama-simple OK")


def test_the_pin_rewrite_touches_one_entry_and_a_round_trip_gives_the_file_back(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    shutil.copy(REPO / "sources.toml", path)
    original = path.read_text()
    away = {"commit": Change("e3546c794"), "tag": Change(None), "pypi": Change("llama-cpp-python==0.3.33"),
            "sha256": Change("a" * 64)}  # fmt: skip
    src = pinfile.write(path, "llama.cpp", away)
    assert src.commit == "e3546c794" and src.tag is None and src.offline and src.offline.sha256 == "a" * 64
    moved = path.read_text()
    assert 'tag    = "b11312"' not in moved and 'pypi   = "llama-cpp-python==0.3.33"   # vendors' in moved
    assert moved.split('["llama.cpp".cmake]')[1] == original.split('["llama.cpp".cmake]')[1]
    back = {"commit": Change("0c1e57098bba43ac29e6e3b677cdceebdd22334f"),
            "tag": Change("b11312", "2026-10-01"),
            "pypi": Change("llama-cpp-python==0.3.36"),
            "sha256": Change("832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")}  # fmt: skip
    pinfile.write(path, "llama.cpp", back)
    assert path.read_text() == original


def test_pin_rebases_each_series_rebuilds_and_smokes_and_reports_a_conflict_as_blocked(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    up = catalogue.root.parent / "line"
    # commit 3 merges what series "merged" carries; commit 4 rewrites the line series "clash" edits
    commits = fakes.make_line(up, 5, {3: KIND, 4: TEXT})
    write_sources(catalogue.root, str(up), commits[0])
    make_series(catalogue, "merged", up, commits[0], [(*KIND, "ggml : barrier kind three")])
    make_series(
        catalogue,
        "clash",
        up,
        commits[0],
        [("tools/llama-simple.cpp", "llama-simple ok", "llama-simple fine", "simple : say fine")],
    )
    make_series(catalogue, "kept", up, commits[0],
                [("ggml/ggml.c", 'return "none";', 'return "kept";', "ggml : keep a kcfg")])  # fmt: skip
    for s in ("merged", "clash", "kept"):
        assert run(catalogue.root, "patch", "pin", s).code == 0
    targets = 'targets = ["test-barrier", "llama-simple", "llama-bench"]\n'
    catalogue.variant("plain", targets)
    catalogue.variant("both", targets + 'patches = ["kept"]\n')
    catalogue.variant("merging", targets + 'patches = ["merged"]\n')
    catalogue.variant("clashing", targets + 'patches = ["clash"]\n')
    before = {p.name: p.read_bytes() for p in (catalogue.root / "patches" / "clash").iterdir()}
    sources_before = (catalogue.root / "sources.toml").read_text()

    dry = run(catalogue.root, "pin", "llama.cpp", commits[4][:10], "--dry-run")
    assert dry.code == 0 and f'+commit = "{commits[4]}"' in dry.out, dry.out
    assert "series to rebase onto" in dry.out and "clash" in dry.out
    assert "variants to rebuild: none" in dry.out  # nothing was built yet
    dry = run(catalogue.root, "pin", "llama.cpp", commits[4][:10], "--dry-run", "--all")
    assert "variants to rebuild: both, clashing, merging, plain" in dry.out
    assert (catalogue.root / "sources.toml").read_text() == sources_before and not catalogue.dist.exists()

    catalogue.variant("unbuilt", targets)
    assert run(catalogue.root, "build", "plain", "both", "clashing", "merging").code == 0
    # a question on the variants that rebuild, answered once at the old pin; one on a blocked one
    bench = '["both", "--vs", "plain", "--suite", "barrier", "--threads", "1", "--reps", "2"]'
    (catalogue.root / "questions.toml").write_text(
        f'[kept-q]\nquestion = "Does kept change the barrier?"\nclaim = "no"\nsuite = "barrier"\n'
        f'entries = ["plain", "both"]\nbench = {bench}\n'
        '[clash-q]\nquestion = "q"\nclaim = "c"\nsuite = "barrier"\nentries = ["plain", "clashing"]\n'
        'bench = ["clashing", "--vs", "plain", "--suite", "barrier"]\n'
    )
    assert run(catalogue.root, "bench", "both", "--vs", "plain", "--suite", "barrier", "--threads", "1",
               "--reps", "2").code == 0  # fmt: skip
    res = run(catalogue.root, "pin", "llama.cpp", commits[4][:10], "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["series"]["kept"]["state"] == "applied", out["series"]
    assert out["series"]["merged"]["state"] == "upstreamed" and out["series"]["merged"]["upstreamed"]
    clash = out["series"]["clash"]
    assert clash["state"] == "conflict" and "llama-simple.cpp" in clash["detail"], clash
    assert out["variants"]["clashing"]["state"] == "blocked"
    assert out["variants"]["unbuilt"]["state"] == "not built"
    assert out["variants"]["merging"] == {"state": "blocked", "detail": "series merged is upstream now; "
                                          "remove it from the variant's patches"}  # fmt: skip
    for v in ("plain", "both"):
        assert out["variants"][v]["state"] == "built" and out["variants"][v]["smoke"] == "ok", out["variants"]
    assert f'commit = "{commits[4]}"' in (catalogue.root / "sources.toml").read_text()
    # the conflicting series is left as it was, its edit worktree not stuck in `git am`
    assert {p.name: p.read_bytes() for p in (catalogue.root / "patches" / "clash").iterdir()} == before
    clash_wt = catalogue.home / "series" / "llama.cpp" / "clash" / "edit" / "src"
    assert fakes.git(clash_wt, "status", "--porcelain") == "" and not (clash_wt / ".git").is_dir()
    assert not (clash_wt / fakes.git(clash_wt, "rev-parse", "--git-path", "rebase-apply")).exists()  # no am
    asked = {q["name"]: q for q in out["questions"]}
    assert list(asked) == ["kept-q"], asked  # clash-q names a blocked variant
    assert asked["kept-q"]["old_run"] == 1 and asked["kept-q"]["new_run"] == 2
    assert any("| both | ns_per_node |" in r and "within noise" in r for r in asked["kept-q"]["rows"]), asked
    report = Path(out["report"]).read_text()
    assert "Run 1 (old pin) against run 2 (new pin)" in report
    assert "| clash | conflict |" in report and "| clashing | blocked" in report
    assert b"kept" in (catalogue.dist / "both" / "bin" / "test-barrier").read_bytes()

    res = run(catalogue.root, "pin", "llama.cpp", commits[4][:10])
    assert res.code == 2 and "pinned to" in res.err and "already" in res.err
    res = run(catalogue.root, "pin", "llama.cp", "x")
    assert res.code == 2 and "unknown source" in res.err
