"""The offline source: a pinned sdist imported as a deterministic commit; unreachable remotes."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import git as gitmod
from builder.layout import Layout

from .conftest import Catalogue, Outcome, write_sources
from .fakes import make_sdist

Run = Callable[..., Outcome]
UNREACHABLE = "https://git.invalid/ggml-org/llama.cpp"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sdist(tmp_path: Path) -> Path:
    return make_sdist(tmp_path / "dl" / "fake_pkg-1.0.tar.gz")


def _offline_source(cat: Catalogue, sdist_sha: str) -> None:
    write_sources(
        cat.root,
        UNREACHABLE,
        "0" * 40,
        f'pypi = "fake-pkg==1.0"\nsubdir = "vendor/fake"\nsha256 = "{sdist_sha}"\n',
    )


def _seed_cache(home: Path, sdist: Path) -> None:
    cache = home / "downloads" / _sha(sdist)
    cache.mkdir(parents=True)
    shutil.copy(sdist, cache / sdist.name)


def test_sdist_import_is_deterministic(
    tmp_path: Path, catalogue: Catalogue, run: Run, sdist: Path, no_network_git: Path
) -> None:
    _offline_source(catalogue, _sha(sdist))
    _seed_cache(catalogue.home, sdist)
    res = run(catalogue.root, "fetch")
    assert res.code == 0, res.err
    assert "unreachable" in res.err and "origin=pypi" in res.out
    commit = res.out.split()[1]
    # A second catalogue elsewhere, same sdist, --offline: the very same commit.
    other = tmp_path / "other"
    shutil.copytree(catalogue.root / "variants", other / "variants")
    shutil.copy(catalogue.root / "sources.toml", other / "sources.toml")
    _seed_cache(other / ".variant", sdist)
    res2 = run(other, "fetch", "--offline")
    assert res2.code == 0, res2.err
    assert res2.out.split()[1] == commit
    mirror = Layout.at(catalogue.root).mirror("llama.cpp")
    files = gitmod.out("ls-tree", "-r", "--name-only", commit, git_dir=mirror).split()
    assert "CMakeLists.txt" in files and "ggml/ggml.c" in files
    assert "model.gguf" in files, "files the tree's .gitignore matches must be imported too"
    assert ".git" not in files and not any(f.startswith("PKG-INFO") for f in files)
    msg = gitmod.out("log", "-1", "--format=%an|%ad|%B", "--date=raw", commit, git_dir=mirror)
    assert msg.startswith("llama-variants|946684800 +0000|Import vendor/fake from fake-pkg==1.0")


def test_build_from_offline_source_records_origin(catalogue: Catalogue, run: Run, sdist: Path) -> None:
    _offline_source(catalogue, _sha(sdist))
    _seed_cache(catalogue.home, sdist)
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    res = run(catalogue.root, "build", "v", "--offline", "--json")
    assert res.code == 0, res.err
    import json

    m = json.loads(res.out)[0]
    assert m["source"]["origin"] == "pypi" and m["source"]["offline"] == {
        "kind": "pypi",
        "name": "fake-pkg==1.0",
        "subdir": "vendor/fake",
        "sha256": _sha(sdist),
    }
    assert m["source"]["base_commit"] != m["source"]["commit"]


def _pip_offline(monkeypatch: pytest.MonkeyPatch, links: Path) -> None:
    # pip, as the tool calls it, but served from a local folder and with the
    # installed setuptools: no network in the test.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")


def test_sdist_is_fetched_with_pip_and_cached(
    catalogue: Catalogue, run: Run, sdist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pip_offline(monkeypatch, sdist.parent)
    _offline_source(catalogue, _sha(sdist))
    res = run(catalogue.root, "fetch", "--offline")
    assert res.code == 0, res.err
    assert "downloading fake-pkg==1.0 (sdist) with pip" in res.err
    cached = catalogue.home / "downloads" / _sha(sdist) / sdist.name
    assert cached.is_file() and _sha(cached) == _sha(sdist)


def test_sdist_sha256_mismatch_is_refused(
    catalogue: Catalogue, run: Run, sdist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pip_offline(monkeypatch, sdist.parent)
    _offline_source(catalogue, "f" * 64)
    catalogue.variant("v", "")
    res = run(catalogue.root, "build", "v", "--offline")
    assert res.code == 2
    assert "llama.cpp.sha256: the pin says " + "f" * 64 in res.err and _sha(sdist) in res.err
    assert not catalogue.dist.exists()
    assert not (catalogue.home / "downloads" / ("f" * 64)).exists()


def test_unreachable_source_without_fallback(catalogue: Catalogue, run: Run, no_network_git: Path) -> None:
    write_sources(catalogue.root, UNREACHABLE, "1" * 40)
    catalogue.variant("v", "")
    res = run(catalogue.root, "build", "v")
    assert res.code == 2 and f"cannot reach {UNREACHABLE}" in res.err and "no offline fallback" in res.err
    res = run(catalogue.root, "build", "v", "--offline")
    assert res.code == 2 and "--offline was given" in res.err


def test_pinned_commit_missing_upstream(catalogue: Catalogue, run: Run) -> None:
    write_sources(catalogue.root, str(catalogue.upstream.path), "2" * 40)
    catalogue.variant("v", "")
    res = run(catalogue.root, "build", "v")
    assert res.code == 2 and "is not in" in res.err and "2" * 40 in res.err
