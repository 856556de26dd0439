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
    built = json.loads(forks.cli("build", "--json", "tmac-clang", "tmac-futex-clang").stdout)
    futex = built[1]
    for m in built:
        checks = {c["check"]: c for c in m["verification"]}
        assert all(c["ok"] for c in checks.values()), checks
        assert m["source"]["origin"] == "archive" and m["deps"][0]["name"] == "t-mac"
        assert checks["kernels"]["detail"].startswith("GGML_TMAC on: ggml_tmac_init")
        assert [f["name"] for f in m["files"]] == ["share/kcfg.ini"]
    assert [p["source"] for p in futex["patches"]] == ["llama.cpp-tmac"]
    assert "GGML_BARRIER_SPIN_US" in {c["check"]: c for c in futex["verification"]}["series-code"]["detail"]
    # a sibling: the fork's own objects come from the cache, the patched ggml.c does not
    assert "src/ggml/src/ggml.c" in futex["ccache"]["missed"] and futex["ccache"]["hits"] > 10
    smoke = json.loads(forks.cli("smoke", "tmac-futex-clang", "--json").stdout)
    by = {(c["variant"], c["binary"]): c for c in smoke}
    assert all(c["ok"] for c in smoke), [c for c in smoke if not c["ok"]]
    assert by[("tmac-futex-clang", "llama-cli")]["detail"].startswith(
        "greedy output vs tmac-clang: identical"
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
