"""ccache's remote storage through a real Redis server: shared between catalogues, never fatal."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.build import ccache as remote

from . import fakes
from .conftest import REPO, Catalogue, Outcome, Redis, ccache_counters, free_port, write_sources

Run = Callable[..., Outcome]
VARIANT = 'targets = ["test-barrier", "llama-simple"]\n'
EXTRA_SOURCES = 40


@pytest.fixture(scope="module")
def big_upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fake project with 40 more ggml sources: 46 compiles per build, enough for a ratio."""
    path = tmp_path_factory.mktemp("big") / "upstream"
    return path, fakes.make_upstream(path, extra_sources=EXTRA_SOURCES)


def _catalogue(root: Path, upstream: tuple[Path, str], remote_url: str | None) -> Path:
    (root / "variants").mkdir(parents=True)
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    write_sources(root, str(upstream[0]), upstream[1])
    (root / "variants" / "v.toml").write_text(VARIANT)
    if remote_url:
        (root / "catalogue.toml").write_text(f'[ccache]\nremote = "{remote_url}"\n')
    return root


def _manifest(root: Path, name: str = "v") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "dist" / name / "manifest.json").read_text())
    return data


def _stats_log_counters(root: Path, name: str = "v") -> tuple[int, int]:
    """(compiles, compiles served by the remote store), read from ccache's own per-build stats log."""
    blocks = (root / ".variant" / "work" / name / "ccache-stats.log").read_text().split("\n# ")
    compiles = [b for b in blocks if "cache_miss" in b or "cache_hit" in b]
    return len(compiles), sum("remote_storage_hit" in b for b in compiles)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("VARIANT_HOME", "VARIANT_ROOT", remote.ENV, "CCACHE_REMOTE_STORAGE", "CCACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield


def test_remote_store_serves_a_fresh_catalogue_and_a_dead_store_only_warns(
    tmp_path: Path, big_upstream: tuple[Path, str], redis_server: Redis, run: Run, clean_env: None
) -> None:
    a = _catalogue(tmp_path / "a", big_upstream, redis_server.url)
    res = run(a, "build", "v")
    assert res.code == 0, res.err
    ma = _manifest(a)
    assert ma["ccache"]["remote"] == {
        "url": redis_server.url,
        "from": str(a / "catalogue.toml"),
        "state": "used",
        "hits": 0,
        "errors": 0,
    }
    assert ma["ccache"]["misses"] >= EXTRA_SOURCES
    shutil.rmtree(a / ".variant" / "ccache")  # A's local cache is gone; the store keeps its copy

    b = _catalogue(tmp_path / "b", big_upstream, redis_server.url)
    res = run(b, "build", "v")
    assert res.code == 0, res.err
    mb = _manifest(b)
    compiles, remote_hits = _stats_log_counters(b)
    assert compiles >= EXTRA_SOURCES + 3  # ggml.c, the extras, two programs
    assert remote_hits / compiles >= 0.9, (remote_hits, compiles)
    assert mb["ccache"]["remote"]["hits"] == remote_hits and mb["ccache"]["hits"] == compiles
    # ccache's own counters of B's cache say the same
    counters = ccache_counters(b / ".variant" / "ccache")
    assert counters["remote_storage_hit"] == remote_hits
    assert mb["hash"] == ma["hash"]
    assert {x["name"]: x["sha256"] for x in mb["binaries"]} == {
        x["name"]: x["sha256"] for x in ma["binaries"]
    }

    # A third build that misses everything (another option), and Redis dies in the middle of it.
    c = _catalogue(tmp_path / "c", big_upstream, redis_server.url)
    (c / "variants" / "v.toml").write_text(VARIANT + "[cmake]\nGGML_OPENMP = false\n")
    stats_log = c / ".variant" / "work" / "v" / "ccache-stats.log"

    def kill_after_some_compiles() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if stats_log.is_file() and stats_log.read_text().count("# ") >= 5:
                break
            time.sleep(0.01)
        redis_server.kill()

    killer = threading.Thread(target=kill_after_some_compiles)
    killer.start()
    proc = subprocess.run(
        [sys.executable, "-m", "builder.cli", "--root", str(c), "build", "-j", "1", "v"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    killer.join()
    assert proc.returncode == 0, proc.stderr
    mc = _manifest(c)
    remote_state = mc["ccache"]["remote"]
    assert remote_state["state"] == "failed during the build" and remote_state["errors"] >= 1
    assert "warning: v: the remote compile cache" in proc.stderr and "local cache only" in proc.stderr
    assert (c / "dist" / "v" / "bin" / "test-barrier").is_file()


def _silent_server() -> tuple[socket.socket, threading.Thread]:
    """Accepts connections and never answers: a hung store."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_store_that_does_not_answer_is_left_out_with_a_warning(
    kind: str, catalogue: Catalogue, run: Run, clean_env: None
) -> None:
    srv = None
    if kind == "refused":
        url = f"redis://127.0.0.1:{free_port()}"
    else:
        srv, _ = _silent_server()
        url = f"redis://127.0.0.1:{srv.getsockname()[1]}"
    (catalogue.root / "catalogue.toml").write_text(
        f'[ccache]\nremote = "{url}"\nconnect-timeout = 200\noperation-timeout = 300\n'
    )
    catalogue.variant("v", VARIANT)
    try:
        res = run(catalogue.root, "build", "v")
    finally:
        if srv is not None:
            srv.close()
    assert res.code == 0, res.err
    assert f"warning: v: remote compile cache {url} does not answer" in res.err
    m = json.loads((catalogue.dist / "v" / "manifest.json").read_text())
    assert m["ccache"]["remote"]["state"] == "unreachable"
    # left out of the build itself: no compile waited for it
    assert "CCACHE_REMOTE_STORAGE" not in " ".join(m["commands"]["configure"])
    assert m["ccache"]["remote_errors"] == 0 and m["ccache"]["misses"] >= 3


def test_remote_is_configured_once_never_hashed_and_its_password_never_shown(
    catalogue: Catalogue, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue.variant("v", VARIANT)
    plain = json.loads(run(catalogue.root, "show", "--json", "v").out)
    assert "CCACHE_REMOTE_STORAGE" not in " ".join(plain["configure"])
    (catalogue.root / "catalogue.toml").write_text(
        '[ccache]\nremote = "redis://user:s3cret@cache.example:6380"\n'
    )
    shared = json.loads(run(catalogue.root, "show", "--json", "v").out)
    assert shared["hash"] == plain["hash"]
    launcher = next(a for a in shared["configure"] if a.startswith("-DCMAKE_C_COMPILER_LAUNCHER="))
    assert "CCACHE_REMOTE_STORAGE=redis://user:***@cache.example:6380|connect-timeout=500|" in launcher
    assert "CCACHE_NOREMOTE_ONLY=true" in launcher
    assert "s3cret" not in run(catalogue.root, "show", "v").out
    # the environment wins over the file; "off" turns it off
    monkeypatch.setenv(remote.ENV, "http://other.example:8080/cache|layout=flat")
    env = json.loads(run(catalogue.root, "show", "--json", "v").out)
    assert "CCACHE_REMOTE_STORAGE=http://other.example:8080/cache|layout=flat|connect-timeout" in " ".join(
        env["configure"]
    )
    assert env["hash"] == plain["hash"]
    monkeypatch.setenv(remote.ENV, "off")
    assert "CCACHE_REMOTE_STORAGE" not in " ".join(
        json.loads(run(catalogue.root, "show", "--json", "v").out)["configure"]
    )
    monkeypatch.delenv(remote.ENV)
    (catalogue.root / "catalogue.toml").write_text('[ccache]\nremote = "s3://bucket"\n')
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and "catalogue.toml: ccache.remote:" in res.err and "redis://" in res.err
    (catalogue.root / "catalogue.toml").write_text('[ccache]\nremote = "redis://h"\nconect-timeout = 5\n')
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and 'did you mean "connect-timeout"' in res.err
