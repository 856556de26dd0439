"""The remote compile cache on real llama.cpp (test-barrier, offline source): a slow test.

Catalogue A builds through a real Redis, its local cache is wiped, and a fresh catalogue B
builds the same variant: ccache's own statistics must show B served at least 90% from Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from builder.ccache import ccache as remote

from .conftest import REPO, Redis, ccache_counters, shipped_variant

pytestmark = pytest.mark.slow
VARIANT = 'targets = ["test-barrier"]\n'


def _catalogue(root: Path, url: str) -> Path:
    (root / "variants").mkdir(parents=True)
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    shutil.copy(REPO / "sources.toml", root / "sources.toml")
    (root / "variants" / "upstream-gcc.toml").write_text(shipped_variant("upstream-gcc", VARIANT))
    (root / "catalogue.toml").write_text(f'[ccache]\nremote = "{url}"\n')
    return root


def _build(root: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("VARIANT_HOME", "VARIANT_ROOT", remote.ENV)}
    out = subprocess.run(
        ["variant", "--root", str(root), "build", "--offline", "--json", "upstream-gcc"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    manifests: list[dict[str, Any]] = json.loads(out.stdout)
    return manifests[0]


def test_real_llama_build_is_served_from_redis_in_a_fresh_catalogue(
    tmp_path: Path,
    redis_server: Redis,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not os.environ.get("VARIANT_DOWNLOADS"):
        monkeypatch.setenv("VARIANT_DOWNLOADS", str(tmp_path_factory.mktemp("downloads")))
    a = _catalogue(tmp_path / "a", redis_server.url)
    ma = _build(a)
    assert ma["ccache"]["remote"]["state"] == "used" and ma["ccache"]["misses"] > 50
    shutil.rmtree(a / ".variant" / "ccache")

    b = _catalogue(tmp_path / "b", redis_server.url)
    mb = _build(b)
    counters = ccache_counters(b / ".variant" / "ccache")
    compiles = counters["direct_cache_hit"] + counters["preprocessed_cache_hit"] + counters["cache_miss"]
    assert counters["remote_storage_hit"] >= 0.9 * compiles, counters
    assert mb["ccache"]["remote"]["hits"] == counters["remote_storage_hit"]
    assert mb["hash"] == ma["hash"]
    assert [x["sha256"] for x in mb["binaries"]] == [x["sha256"] for x in ma["binaries"]]
    print(f"remote hits {counters['remote_storage_hit']}/{compiles}; build {ma['build_seconds']} s cold, "
          f"{mb['build_seconds']} s from the store")  # fmt: skip
