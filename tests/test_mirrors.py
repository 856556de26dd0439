"""Offline source archives, the way Spack mirrors work: written from git, found by sha256, imported alike."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Catalogue, Outcome, write_sources

Run = Callable[..., Outcome]
UNREACHABLE = "https://git.invalid/kaleid-liner/llama.cpp"
ARCHIVE = "fake-fork-1234567.tar.gz"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _archive_source(cat: Catalogue, url: str, sha: str) -> None:
    write_sources(cat.root, url, cat.upstream.commit, f'archive = "{ARCHIVE}"\nsha256 = "{sha}"\n')


def _clone_catalogue(cat: Catalogue, where: Path) -> Path:
    (where / "variants").mkdir(parents=True)
    shutil.copytree(cat.root / "toolchains", where / "toolchains")
    for v in (cat.root / "variants").glob("*.toml"):
        shutil.copy(v, where / "variants" / v.name)
    return where


@pytest.fixture
def mirror(catalogue: Catalogue, run: Run, tmp_path: Path, no_network_git: Path) -> Path:
    """A mirror folder written by `variant mirror create` from the (reachable) git source, then pinned."""
    folder = tmp_path / "mirror"
    _archive_source(catalogue, str(catalogue.upstream.path), "0" * 64)
    res = run(catalogue.root, "mirror", "create", str(folder))
    # The placeholder pin cannot match: the file is written and the difference said (exit 1).
    assert res.code == 1 and "DIFFERS from the pin" in res.out, res.err
    sha = _sha(folder / ARCHIVE)
    _archive_source(catalogue, str(catalogue.upstream.path), sha)
    again = run(catalogue.root, "mirror", "create", str(folder))
    assert again.code == 0 and f"sha256:{sha} matches the pin" in again.out  # same commit, same bytes
    return folder


def test_offline_builds_come_from_the_mirror_as_one_commit_everywhere(
    catalogue: Catalogue, run: Run, tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _sha(mirror / ARCHIVE)
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    commits = []
    for i in range(2):
        root = _clone_catalogue(catalogue, tmp_path / f"airgapped{i}")
        _archive_source(Catalogue(root, catalogue.upstream), UNREACHABLE, sha)
        args = ["--mirror", str(mirror)] if i == 0 else []
        if i == 1:
            monkeypatch.setenv("VARIANT_MIRRORS", f"{tmp_path / 'empty'}:{mirror}")
        res = run(root, *args, "build", "v")
        assert res.code == 0, res.err[-2000:]
        m = json.loads((root / "dist" / "v" / "manifest.json").read_text())
        assert m["source"]["origin"] == "archive"
        assert m["source"]["origin_detail"] == f"{ARCHIVE} sha256:{sha}"
        commits.append(m["source"]["base_commit"])
    assert commits[0] == commits[1] and commits[0] != catalogue.upstream.commit
    fetched = run(root, "fetch")
    assert fetched.code == 0 and "origin=archive" in fetched.out


def test_a_wrong_archive_or_none_at_all_is_refused(
    catalogue: Catalogue, run: Run, tmp_path: Path, mirror: Path
) -> None:
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    root = _clone_catalogue(catalogue, tmp_path / "airgapped")
    cat = Catalogue(root, catalogue.upstream)
    _archive_source(cat, UNREACHABLE, "a" * 64)
    res = run(root, "--mirror", str(mirror), "build", "v")
    assert res.code == 2 and "sources.toml: llama.cpp.sha256" in res.err
    assert f"has sha256 {_sha(mirror / ARCHIVE)}, the pin says {'a' * 64}" in res.err
    assert not (root / "dist").exists()
    _archive_source(cat, UNREACHABLE, _sha(mirror / ARCHIVE))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(root, "--mirror", str(empty), "build", "v")
    assert res.code == 2 and "sources.toml: llama.cpp.archive" in res.err
    assert f"{ARCHIVE} is in no mirror folder (mirrors: {empty})" in res.err
    assert not (root / "dist").exists()
