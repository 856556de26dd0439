"""Forks as sources, on small fakes: a tree nested in another, generated code, a dependency built first
and reused, compiler floors, files the binaries need at run time, series ported per base, kernel symbols."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.layout import Layout
from builder.models import installed

from .conftest import Catalogue, Outcome
from .fakes import make_dep, make_outer, make_patch

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("forkrepos")
    return {
        "outer": (root / "outer", make_outer(root / "outer")),
        "dep": (root / "dep", make_dep(root / "dep")),
    }


def _sources(cat: Catalogue, repos: dict[str, tuple[Path, str]], outer: str = "", dep: str = "") -> None:
    (outer_path, outer_commit), (dep_path, dep_commit) = repos["outer"], repos["dep"]
    (cat.root / "sources.toml").write_text(
        f"""
["outer"]
url = "{outer_path}"
commit = "{outer_commit}"
nested = {{ "3rdparty/llama" = "fake-llama" }}
prebuild = [["{{python}}", "gen.py", "7"]]
depends = ["fakedep"]
[outer.cmake]
FAKE_DEP = true
[outer.runtime]
files = ["{{dep:fakedep}}/lib/kcfg.ini"]
env = {{ FAKE_KCFG_FILE = "{{share}}/kcfg.ini" }}
[outer.verify]
FAKE_DEP = ["fakedep_kernel"]
"*" = ["ggml_barrier_*"]
{outer}

["fake-llama"]
url = "{cat.upstream.path}"
commit = "{cat.upstream.commit}"

["llama.cpp"]
url = "{cat.upstream.path}"
commit = "{cat.upstream.commit}"

["fakedep"]
role = "dependency"
url = "{dep_path}"
commit = "{dep_commit}"
export = {{ CMAKE_PREFIX_PATH = "{{prefix}}/lib/cmake/fakedep" }}
{dep}
"""
    )


def _manifest(cat: Catalogue, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cat.dist / name / "manifest.json").read_text())
    return data


def _checks(cat: Catalogue, name: str) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in _manifest(cat, name)["verification"]}


def test_a_nested_fork_with_a_dependency_builds_verifies_and_runs_from_dist(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]
) -> None:
    _sources(catalogue, repos)
    catalogue.variant("fork", TARGETS + 'source = "outer"\n')
    res = run(catalogue.root, "build", "fork")
    assert res.code == 0, res.err[-3000:]
    assert "fakedep: building the dependency" in res.err
    m = _manifest(catalogue, "fork")
    (nested,) = m["nested"]
    assert nested["path"] == "3rdparty/llama" and nested["name"] == "fake-llama"
    assert nested["base_commit"] == catalogue.upstream.commit
    (dep,) = m["deps"]
    assert dep["name"] == "fakedep" and dep["base_commit"] == repos["dep"][1] and len(dep["hash"]) == 64
    assert [f["name"] for f in m["files"]] == ["share/kcfg.ini"]
    assert m["runtime"]["env"] == {"FAKE_KCFG_FILE": "{share}/kcfg.ini"}
    assert _checks(catalogue, "fork")["kernels"] == "always: ggml_barrier_*; FAKE_DEP on: fakedep_kernel"
    # The binaries read the dependency's file from dist/, through the runtime environment, even
    # once the dependency's own prefix is gone.
    shutil.rmtree(Path(dep["prefix"]))
    with installed.held(Layout.at(catalogue.root), "fork") as inst:
        out = subprocess.run([inst.bin / "test-barrier"], env=inst.env(), capture_output=True, text=True)
    assert "kcfg=kcfg-from-the-dependency generated=7" in out.stdout, out.stdout + out.stderr
    bare = subprocess.run([catalogue.dist / "fork" / "bin" / "test-barrier"], capture_output=True, text=True)
    assert "kcfg=unreadable:42" in bare.stdout  # without it: the compiled-in prefix, now deleted


def test_the_dependency_is_built_once_per_hash_and_is_part_of_the_variants(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]
) -> None:
    _sources(catalogue, repos)
    catalogue.variant("a", TARGETS + 'source = "outer"\n')
    catalogue.variant("b", TARGETS + 'source = "outer"\n[cmake]\nGGML_OPENMP = false\n')
    res = run(catalogue.root, "build", "a", "b")
    assert res.code == 0, res.err[-3000:]
    assert res.err.count("fakedep: building the dependency") == 1
    assert _manifest(catalogue, "a")["deps"] == _manifest(catalogue, "b")["deps"]
    before = _manifest(catalogue, "a")["hash"]
    # Another dependency build (another option) is another variant: stale, and rebuilt with it.
    _sources(catalogue, repos, dep="[fakedep.cmake]\nFAKEDEP_UNUSED = 1\n")
    listed = {r["name"]: r for r in json.loads(run(catalogue.root, "list", "--json").out)}
    assert listed["a"]["status"] == "stale" and listed["a"]["hash"] != before


def test_a_dependency_that_fails_to_build_publishes_nothing(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]
) -> None:
    _sources(catalogue, repos, dep="[fakedep.cmake]\nFAKEDEP_FAIL = true\n")
    catalogue.variant("fork", TARGETS + 'source = "outer"\n')
    res = run(catalogue.root, "build", "fork")
    assert res.code == 1 and "fakedep: told to fail" in res.err and "full log:" in res.err
    assert not (catalogue.dist / "fork").exists()
    assert not list((catalogue.home / "deps").glob("fakedep-*"))  # no prefix, not even half-installed


def test_kernel_symbols_are_verified_both_ways(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]
) -> None:
    _sources(catalogue, repos)
    catalogue.variant("liar", TARGETS + 'source = "outer"\n[cmake]\nFAKE_DEP_SKIP_KERNEL = true\n')
    res = run(catalogue.root, "build", "liar")
    assert res.code == 1 and "kernels:" in res.err and "lacks fakedep_kernel" in res.err
    catalogue.variant("plain", TARGETS + 'source = "outer"\n[cmake]\nFAKE_DEP = false\n')
    assert run(catalogue.root, "build", "plain").code == 0
    assert "FAKE_DEP off: fakedep_kernel" in _checks(catalogue, "plain")["kernels"]


def test_series_ports_per_base_and_a_series_without_one(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]
) -> None:
    _sources(catalogue, repos)
    sdir = catalogue.series("kind", 'description = "kind"\napplies-to = ["llama.cpp", "fake-llama"]\n')
    make_patch(
        catalogue.upstream.path,
        sdir / "fake-llama",
        name="kind for the fork",
        old="return 0; }",
        new="return 5; }",
    )
    make_patch(catalogue.upstream.path, sdir, name="kind upstream", old="return 0; }", new="return 1; }")
    catalogue.variant("fork", TARGETS + 'source = "outer"\npatches = ["kind"]\n')
    catalogue.variant("up", TARGETS + 'patches = ["kind"]\n[cmake]\nFAKE_DEP = false\n')
    res = run(catalogue.root, "build", "fork", "up")
    assert res.code == 0, res.err[-3000:]
    # the fork's port went into the nested tree, upstream got the top-level files
    fork_out = subprocess.run(
        [catalogue.dist / "fork" / "bin" / "test-barrier"], capture_output=True, text=True
    )
    up_out = subprocess.run([catalogue.dist / "up" / "bin" / "test-barrier"], capture_output=True, text=True)
    assert "kind=5" in fork_out.stdout and "kind=1" in up_out.stdout
    fork = _manifest(catalogue, "fork")
    assert [(p["source"], p["subject"]) for p in fork["patches"]] == [
        ("fake-llama", "ggml: kind for the fork")
    ]
    assert _checks(catalogue, "fork")["patches (3rdparty/llama)"].startswith("1 patch commit(s)")
    listed = json.loads(run(catalogue.root, "patch", "list", "--json").out)
    assert listed[0]["bases"] == ["llama.cpp", "fake-llama"]
    pinned = run(catalogue.root, "patch", "pin", "kind")
    assert pinned.code == 0 and "fake-llama/0001-ggml-kind-for-the-fork.patch" in pinned.out
    # A series with no port for any of the variant's trees: named, with the bases it has.
    other = catalogue.series("elsewhere", 'applies-to = ["ik_llama.cpp"]\n')
    make_patch(
        catalogue.upstream.path, other / "ik_llama.cpp", name="x", old="return 0; }", new="return 9; }"
    )
    catalogue.variant("bad", TARGETS + 'source = "outer"\npatches = ["elsewhere"]\n')
    res = run(catalogue.root, "build", "bad")
    assert res.code == 2 and 'series "elsewhere" has no port for outer, fake-llama' in res.err
    assert "it supports: ik_llama.cpp" in res.err


def test_compiler_floors(catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]]) -> None:
    _sources(
        catalogue,
        repos,
        outer='[outer.compiler]\nfamily = ["clang"]\nwhy = "its kernels use clang vectors"\n',
    )
    catalogue.variant("fork-gcc", TARGETS + 'source = "outer"\ntoolchain = "gcc"\n')
    res = run(catalogue.root, "build", "fork-gcc")
    assert res.code == 2 and "fork-gcc.toml: toolchain" in res.err
    assert 'source "outer" needs a clang toolchain (its kernels use clang vectors); "gcc" is gcc' in res.err
    _sources(catalogue, repos, outer='[outer.compiler]\nfamily = ["gcc"]\nmin-version = "99"\n')
    listed = {r["name"]: r for r in json.loads(run(catalogue.root, "list", "--json").out)}
    assert listed["fork-gcc"]["status"].startswith("needs gcc >= 99 (found 12")
    res = run(catalogue.root, "build", "fork-gcc")
    assert res.code == 2 and 'source "outer" needs gcc >= 99' in res.err and "apt-get install" in res.err
    assert not catalogue.dist.exists()
    floors = json.loads(run(catalogue.root, "doctor", "--json").out)["compiler_floors"]
    assert floors == [
        {
            "source": "outer",
            "needs": "gcc >= 99",
            "ok": False,
            "found": floors[0]["found"],
            "install": "apt-get install -y gcc g++",
        }
    ]
    assert floors[0]["found"].startswith("needs gcc >= 99 (found 12")
    assert "missing  source outer needs gcc >= 99" in run(catalogue.root, "doctor").out


def test_a_dependency_from_an_archive_is_up_to_date_after_its_build(
    catalogue: Catalogue, run: Run, repos: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """The origin of a dependency's tree (here the archive, git being unreachable) is in the variant's hash:
    planned before the fetch, it must be the one the build records, or the variant is never up to date."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    dep_path, dep_commit = repos["dep"]
    archive = mirror / "fakedep-1.tar"
    subprocess.run(
        ["git", "-C", str(dep_path), "archive", "--prefix=fakedep-1/", "-o", str(archive), dep_commit],
        check=True,
    )
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    _sources(catalogue, repos)
    text = (catalogue.root / "sources.toml").read_text()
    text = text.replace(
        f'url = "{dep_path}"',
        f'url = "https://git.invalid/fakedep"\narchive = "fakedep-1.tar"\nsha256 = "{sha}"',
    )
    (catalogue.root / "sources.toml").write_text(text)
    catalogue.variant("fork", TARGETS + 'source = "outer"\n')
    res = run(catalogue.root, "--mirror", str(mirror), "build", "fork")
    assert res.code == 0, res.err[-3000:]
    assert _manifest(catalogue, "fork")["deps"][0]["origin"] == "archive"
    listed = {
        r["name"]: r for r in json.loads(run(catalogue.root, "--mirror", str(mirror), "list", "--json").out)
    }
    assert listed["fork"]["status"] == "up to date"
    again = run(catalogue.root, "--mirror", str(mirror), "build", "fork")
    assert again.code == 0 and "up to date" in again.err
