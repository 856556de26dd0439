"""A source's offline history as snapshots in its mirror (source/versions.py): imported when a build
needs one, linked oldest first by grafts, and NAME@VERSION built from them; fake sdists, real git."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import git

from . import fakes
from .conftest import Catalogue, Outcome, write_sources

RELEASES = ("1.0", "1.1", "1.2")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _history(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong: str = ""
) -> dict[str, str]:
    """Three fake releases in a mirror folder, the newest pinned; history.toml lists all three."""
    folder = tmp_path / "sdists"
    folder.mkdir()
    shas = {}
    for v in RELEASES:
        top = f"fake_pkg-{v}"
        sdist = fakes.make_sdist(folder / f"{top}.tar.gz", top=top, other=f"/* release {v} */")
        shas[v] = _sha(sdist)
    monkeypatch.setenv("VARIANT_MIRRORS", str(folder))
    write_sources(catalogue.root, "file:///nonexistent/llama.cpp.git", "3333333",
                  f'pypi = "fake-pkg==1.2"\nsubdir = "vendor/fake"\nsha256 = "{shas["1.2"]}"\n')  # fmt: skip
    entries = "".join(
        f'[["llama.cpp".versions]]\nversion = "{v}"\ncommit = "{(k + 1) * 1111111:07d}"\n'
        f'sha256 = "{"f" * 64 if v == wrong else shas[v]}"\ndate = 2026-0{k + 1}-01\n'
        for k, v in enumerate(RELEASES)
    )
    (catalogue.root / "history.toml").write_text(
        f'["llama.cpp"]\npypi = "fake-pkg"\nsubdir = "vendor/fake"\n{entries}'
    )
    catalogue.variant("v", 'targets = ["llama-other"]\n')
    return shas


def _listed(run: Callable[..., Outcome], root: Path) -> dict[str, dict[str, object]]:
    res = run(root, "upstream", "list", "llama.cpp", "--json")
    assert res.code == 0, res.err
    return {r["label"]: r for r in json.loads(res.out)}


def test_snapshots_are_imported_when_built_and_linked_into_one_history(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Outcome]
) -> None:
    _history(catalogue, tmp_path, monkeypatch)
    rows = _listed(run, catalogue.root)
    assert list(rows) == list(RELEASES) and [r["pinned"] for r in rows.values()] == [False, False, True]
    assert all(r["imported"] is None for r in rows.values())

    res = run(catalogue.root, "build", "v@1.0", "--offline")
    assert res.code == 0, res.err
    out = catalogue.dist / "v@1.0" / "bin" / "llama-other"
    assert out.is_file()
    rows = _listed(run, catalogue.root)
    assert rows["1.0"]["imported"] and rows["1.1"]["imported"] is None and rows["1.2"]["imported"] is None

    # The pinned version: the same commit as the pin's own import, the same hash as the variant.
    assert run(catalogue.root, "build", "v", "v@1.2", "--offline", "--json").code == 0
    manifests = {n: json.loads((catalogue.dist / n / "manifest.json").read_text()) for n in ("v", "v@1.2")}
    assert manifests["v"]["hash"] == manifests["v@1.2"]["hash"]
    mirror = catalogue.home / "mirrors" / "llama.cpp.git"
    pinned = git.out("rev-parse", "history/1.2", git_dir=mirror)
    assert json.loads((catalogue.dist / "v" / "manifest.json").read_text())["source"]["base_commit"] == pinned

    def between(a: str, b: str) -> list[str]:
        return git.out("log", "--format=%H", f"history/{a}..history/{b}", git_dir=mirror).split()

    assert between("1.0", "1.2") == [pinned]
    first = git.out("rev-parse", "history/1.0", git_dir=mirror)
    # 1.1 imported later: it slots in between, and no commit changes
    assert run(catalogue.root, "build", "v@1.1", "--offline").code == 0
    middle = git.out("rev-parse", "history/1.1", git_dir=mirror)
    assert between("1.0", "1.2") == [pinned, middle]
    assert git.out("rev-parse", "history/1.2", "history/1.0", git_dir=mirror).split() == [pinned, first]
    diff = git.out("diff", "--stat", "history/1.1", "history/1.2", git_dir=mirror)
    assert "tools/llama-other.c" in diff and "1 file changed" in diff
    assert all(r["imported"] for r in _listed(run, catalogue.root).values())
    # a commit prefix names the same version, built once
    res = run(catalogue.root, "build", "v@2222222", "--offline")
    assert res.code == 0 and "v@1.1: up to date" in res.err, res.err


def test_a_history_entry_with_the_wrong_sha256_and_unknown_versions_are_refused(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Outcome]
) -> None:
    shas = _history(catalogue, tmp_path, monkeypatch, wrong="1.1")
    res = run(catalogue.root, "build", "v@1.1", "--offline")
    assert res.code == 2, res.err
    assert f"has sha256 {shas['1.1']}, the pin says {'f' * 64}" in res.err and "history.toml" in res.err
    assert "fake-pkg==1.1" in res.err
    assert not (catalogue.dist / "v@1.1").exists()
    assert _listed(run, catalogue.root)["1.1"]["imported"] is None
    res = run(catalogue.root, "build", "v@1.3", "--offline")
    assert res.code == 2 and "no version or commit '1.3'" in res.err and 'did you mean "1.2"' in res.err
    res = run(catalogue.root, "build", "v@-x")
    assert res.code == 2 and "invalid variant name" in res.err
    res = run(catalogue.root, "upstream", "list", "llama.cp")
    assert res.code == 2 and 'did you mean "llama.cpp"' in res.err


def test_pin_to_a_history_version_and_back_gives_sources_toml_back(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Outcome]
) -> None:
    shas = _history(catalogue, tmp_path, monkeypatch)
    before = (catalogue.root / "sources.toml").read_text()
    res = run(catalogue.root, "pin", "llama.cpp", "1.0", "--offline", "--no-questions", "--json", "--all")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert (out["old"], out["new"]) == ("1.2", "1.0") and out["variants"]["v"]["state"] == "built"
    text = (catalogue.root / "sources.toml").read_text()
    assert 'commit = "1111111"' in text and 'pypi = "fake-pkg==1.0"' in text and shas["1.0"] in text
    manifest = json.loads((catalogue.dist / "v" / "manifest.json").read_text())
    assert manifest["source"]["offline"]["name"] == "fake-pkg==1.0"
    assert "release 1.0" in (catalogue.home / "work" / "v" / "src" / "tools" / "llama-other.c").read_text()
    assert run(catalogue.root, "upstream", "list", "llama.cpp", "--json").out.count('"pinned": true') == 1
    assert _listed(run, catalogue.root)["1.0"]["pinned"] is True

    res = run(catalogue.root, "pin", "llama.cpp", "1.2", "--offline", "--no-questions")
    assert res.code == 0, res.err
    assert (catalogue.root / "sources.toml").read_text() == before
    assert "# llama.cpp: 1.0 -> 1.2" in res.out and "| v | built |" in res.out
