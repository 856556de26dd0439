"""The shipped fork variants from the offline archives: built, verified, and their kernels shown to run.

The archives come from ../shared/forks (VARIANT_MIRRORS overrides): without
them this module fails, it does not skip, so CI cannot pass without forks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
FORK_ARCHIVES = ("T-MAC-6494329.tar.gz", "llama.cpp-tmac-81ffd4cd.tar.gz", "BitNet-4645960.tar.gz",
                 "llama.cpp-bitnet-406a5036.tar.gz")  # fmt: skip
# What smoke needs of a fork: a decoder, llama-bench, and what makes and checks the models.
TARGETS = 'targets = ["llama-cli", "llama-bench", "llama-quantize", "llama-perplexity"]\n'


def mirror() -> Path:
    folder = Path(
        os.environ.get("VARIANT_MIRRORS", str(REPO.parent / "shared" / "forks")).split(os.pathsep)[0]
    )
    missing = [a for a in FORK_ARCHIVES if not (folder / a).is_file()]
    assert not missing, f"the fork archives are not in {folder} (set VARIANT_MIRRORS): {missing}"
    return folder


class Forks:
    def __init__(self, root: Path, mirror: Path) -> None:
        self.root, self.mirror = root, mirror

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["variant", "--root", str(self.root), "--mirror", str(self.mirror), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-4000:]
        return out

    def manifest(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "dist" / name / "manifest.json").read_text())
        return data


@pytest.fixture(scope="module")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forks]:
    """The shipped catalogue (sources, toolchains, series, mixins); fork variants with smoke's programs."""
    folder = mirror()
    root = tmp_path_factory.mktemp("forks")
    for sub in ("toolchains", "patches"):
        shutil.copytree(REPO / sub, root / sub)
    shutil.copy(REPO / "sources.toml", root / "sources.toml")
    (root / "variants").mkdir()
    for spec in REPO.glob("variants/*.toml"):
        if spec.name.startswith("_") or spec.stem in ("tmac-clang", "tmac-futex-clang", "bitnet-tl2-clang"):
            text = re.sub(r"(?m)^targets\s*=.*$", TARGETS.strip(), spec.read_text())
            (root / "variants" / spec.name).write_text(text)
    yield Forks(root, folder)


def test_tmac_futex_builds_from_the_archives_and_its_kernels_run(forks: Forks) -> None:
    # A new user's two commands, each on its own: the variant builds and smokes before its baseline
    # exists (its kernels shown to run, the comparison said to be skipped).
    (futex,) = json.loads(forks.cli("build", "--json", "tmac-futex-clang").stdout)
    alone = json.loads(forks.cli("smoke", "tmac-futex-clang", "--json").stdout)
    assert all(c["ok"] for c in alone), [c for c in alone if not c["ok"]]
    assert any(
        c["detail"].startswith("greedy output not compared: its default baseline tmac-clang") for c in alone
    )
    assert float(next(c for c in alone if c["binary"] == "perf")["detail"].split("%")[0]) > 20
    built = [*json.loads(forks.cli("build", "--json", "tmac-clang").stdout), futex]
    for m in built:
        checks = {c["check"]: c for c in m["verification"]}
        assert all(c["ok"] for c in checks.values()), checks
        assert m["source"]["origin"] == "archive" and m["deps"][0]["name"] == "t-mac"
        assert checks["kernels"]["detail"].startswith("GGML_TMAC on: ggml_tmac_init")
        assert [f["name"] for f in m["files"]] == ["share/kcfg.ini"]
    assert [p["source"] for p in futex["patches"]] == ["llama.cpp-tmac"]
    code = {c["check"]: c for c in futex["verification"]}["series-code"]
    assert "GGML_CPU_BARRIER_SPIN_US" in code["detail"]
    # the baseline, built second, is the sibling now: the fork's own objects come from the cache,
    # ggml.c (patched in the other) does not
    cache = built[0]["ccache"]
    assert "src/ggml/src/ggml.c" in cache["missed"] and cache["hits"] > 10, cache
    smoke = json.loads(forks.cli("smoke", "tmac-futex-clang", "--json").stdout)
    by = {(c["variant"], c["binary"]): c for c in smoke}
    assert all(c["ok"] for c in smoke), [c for c in smoke if not c["ok"]]
    assert by[("tmac-futex-clang", "llama-cli")]["detail"].startswith(
        "greedy output vs tmac-clang (its default baseline): identical"
    )
    ppl = by[("tmac-futex-clang", "llama-perplexity")]["detail"]
    assert ppl.startswith("i4 (kernels)") and "vs f16" in ppl
    share = float(by[("tmac-futex-clang", "perf")]["detail"].split("%")[0])
    assert share > 20, by[("tmac-futex-clang", "perf")]  # the lookup-table kernels do the work


def test_bitnet_tl2_builds_nested_and_agrees_with_f32(forks: Forks) -> None:
    (m,) = json.loads(forks.cli("build", "--json", "bitnet-tl2-clang").stdout)
    checks = {c["check"]: c for c in m["verification"]}
    assert all(c["ok"] for c in checks.values()), checks
    assert m["nested"][0]["path"] == "3rdparty/llama.cpp" and m["nested"][0]["origin"] == "archive"
    assert "BITNET_X86_TL2 on: ggml_qgemm_lut" in checks["kernels"]["detail"]
    smoke = json.loads(forks.cli("smoke", "bitnet-tl2-clang", "--json").stdout)
    assert all(c["ok"] for c in smoke), [c for c in smoke if not c["ok"]]
    ppl = next(c for c in smoke if c["binary"] == "llama-perplexity")["detail"]
    assert ppl.startswith("tl2 (kernels)") and "vs f32" in ppl


def test_a_fork_comparison_runs_end_to_end(forks: Forks, tmp_path: Path) -> None:
    """The formats suite on the two T-MAC builds, one repetition: the pipeline works (not the numbers)."""
    forks.cli("build", "tmac-clang", "tmac-futex-clang")  # built by the test above: a no-op then
    out = forks.cli("bench", "tmac-futex-clang", "--vs", "tmac-clang", "--suite", "formats",
                    "--threads", "2", "--reps", "1", "--format", "json")  # fmt: skip
    rows = json.loads(out.stdout[out.stdout.index("[") :])
    formats = {r["params"]["format"] for r in rows}
    assert formats == {"i4", "f16", "q4_0"}, formats  # the kernels' format and the recipe's plain ones
    assert all(r["baseline"]["median"] > 0 and r["candidate"]["median"] > 0 for r in rows)
    # Entries VARIANT:FORMAT: T-MAC's kernel against the same weights in q4_0, in one build.
    cmp_ = json.loads(forks.cli("compare", "tmac-clang:q4_0", "tmac-clang:i4", "--format", "json").stdout)
    assert {r["metric"] for r in cmp_} == {"pp_tps", "tg_tps", "cpu_s_per_token"}
    assert all("format" not in r["params"] and r["speedup"]["median"] > 0 for r in cmp_)
    shipped = (REPO / "questions.toml").read_text()  # its tmac question needs upstream-clang: not built here
    (forks.root / "questions.toml").write_text(shipped + QUESTION)
    report = forks.cli("report", "--questions", "tmac", "futex-i4", "--out", str(tmp_path / "q"))
    text = Path(report.stdout.strip()).read_text()
    assert "No stored run measured upstream-clang:q4_0, tmac-clang:q4_0, tmac-clang:i4" in text
    answered = text[text.index("## futex-i4:") :]
    assert "| metric | case | tmac-clang:i4 | tmac-futex-clang:i4 |" in answered
    assert "tmac-futex-clang:i4 vs tmac-clang:i4:" in answered and (tmp_path / "q" / "futex-i4.png").is_file()


QUESTION = """
[futex-i4]
question = "The futex barrier on T-MAC's own kernels"
suite    = "formats"
entries  = ["tmac-clang:i4", "tmac-futex-clang:i4"]
bench    = ["tmac-futex-clang", "--vs", "tmac-clang", "--suite", "formats"]
"""
