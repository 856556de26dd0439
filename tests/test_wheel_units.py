"""`variant wheel` without building llama-cpp-python: refusals, version label, staged sdist, checks."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.version import Version

from builder.build import pipeline
from builder.layout import Layout
from builder.wheel import check, stage
from builder.wheel import make as wheel_make
from builder.wheel.recipe import MANIFEST, Recipe

from .conftest import Catalogue, Outcome, write_sources
from .fakes import git

Run = Callable[..., Outcome]
PIN = 'pypi = "llama-cpp-python==0.3.36"\nsubdir = "vendor/llama.cpp"\nsha256 = "' + "a" * 64 + '"\n'


def _pinned(cat: Catalogue, more: str = "") -> None:
    write_sources(cat.root, str(cat.upstream.path), cat.upstream.commit, PIN + more)


def _recipe(cat: Catalogue, name: str, spec: str) -> Recipe:
    """The wheel recipe of a variant of the fake upstream, pinned as llama-cpp-python's vendored tree."""
    _pinned(cat)
    cat.variant(name, spec)
    return wheel_make.resolve(Layout.at(cat.root), name)


def test_a_fork_or_a_catalogue_without_the_sdist_is_refused_naming_the_pin(
    catalogue: Catalogue, run: Run, no_network_git: Path
) -> None:
    fork = f'\n["fork"]\nurl = "{catalogue.upstream.path}"\ncommit = "{catalogue.upstream.commit}"\n'
    _pinned(catalogue, fork)
    catalogue.variant("fork-gcc", 'source = "fork"\ntoolchain = "gcc"\n')
    res = run(catalogue.root, "wheel", "fork-gcc")
    assert res.code == 2
    assert 'its source "fork"' in res.err and "llama-cpp-python==0.3.36 vendors" in res.err
    assert (
        f'a wheel needs source "llama.cpp" ({catalogue.upstream.path} @ {catalogue.upstream.commit[:9]})'
        in (res.err)
    )
    assert not (catalogue.dist / "wheels").exists()

    write_sources(catalogue.root, str(catalogue.upstream.path), catalogue.upstream.commit)
    catalogue.variant("up-gcc", 'toolchain = "gcc"\n')
    res = run(catalogue.root, "wheel", "up-gcc")
    assert res.code == 2 and "pinned to a llama-cpp-python sdist" in res.err


def _sdist(path: Path) -> Path:
    """llama-cpp-python's shape: a package, PKG-INFO, and a vendored tree to be replaced."""
    files = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: llama_cpp_python\nVersion: 0.3.36\n",
        "pyproject.toml": "[project]\nname = 'llama_cpp_python'\ndynamic = ['version']\n",
        "llama_cpp/__init__.py": 'from .llama_cpp import *\n\n__version__ = "0.3.36"\n',
        "vendor/llama.cpp/only-in-the-sdist.txt": "the sdist's vendored tree, not the variant's\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"llama_cpp_python-0.3.36/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_staged_sdist_holds_the_variants_tree_label_and_manifest_and_restaging_touches_nothing(
    catalogue: Catalogue, tmp_path: Path, no_network_git: Path
) -> None:
    recipe = _recipe(catalogue, "up-gcc", 'toolchain = "gcc"\n')
    layout = Layout.at(catalogue.root)
    assert recipe.version == f"0.3.36+up.gcc.{recipe.plan.hash[:12]}"
    assert Version(recipe.version).local == f"up.gcc.{recipe.plan.hash[:12]}"

    checked, _ = pipeline.checkout(layout, recipe.plan, pipeline.Options(), tmp_path / "log", print)
    (checked.worktree / "untracked.c").write_text("not committed: not the variant's tree\n")
    sdist = _sdist(tmp_path / "llama_cpp_python-0.3.36.tar.gz")
    assert stage.stage(recipe, sdist, checked.worktree) > 0

    staged = recipe.staged
    vendor = staged / "vendor/llama.cpp"
    vendored = sorted(str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file())
    assert vendored == sorted(git(checked.worktree, "ls-files").split())
    assert '__version__ = "' + recipe.version + '"' in (staged / "llama_cpp/__init__.py").read_text()
    assert not (staged / "PKG-INFO").exists()
    carried = json.loads((staged / "llama_cpp" / MANIFEST).read_text())
    assert carried["hash"] == recipe.plan.hash and carried["wheel"]["version"] == recipe.version
    assert "-DLLAMA_BUILD_TESTS=OFF" in carried["wheel"]["cmake_args"]

    kept = staged / "vendor/llama.cpp" / vendored[0]
    before = kept.stat().st_mtime_ns
    assert stage.stage(recipe, sdist, checked.worktree) == 0
    assert kept.stat().st_mtime_ns == before

    # A new commit on the variant's branch (a series changed): only its file is written again, and
    # dated now, not at its commit (a patch's date, older than the last build's objects).
    changed = checked.worktree / vendored[-1]
    changed.write_text(changed.read_text() + "\n/* changed */\n")
    who = {f"GIT_{r}_{k}": v for r in ("AUTHOR", "COMMITTER") for k, v in (("NAME", "t"), ("EMAIL", "t@t"))}
    old = {
        **os.environ,
        **who,
        "GIT_AUTHOR_DATE": "@946684800 +0000",
        "GIT_COMMITTER_DATE": "@946684800 +0000",
    }
    subprocess.run(["git", "-C", checked.worktree, "commit", "-qam", "change"], env=old, check=True)
    t0 = time.time_ns()
    assert stage.stage(recipe, sdist, checked.worktree) == 1
    assert kept.stat().st_mtime_ns == before
    assert (staged / "vendor/llama.cpp" / vendored[-1]).stat().st_mtime_ns >= t0 - 10**9

    assert "-DLLAVA_BUILD=OFF" not in recipe.cmake_args()
    lean = dataclasses.replace(recipe, mtmd=False)
    assert "-DLLAVA_BUILD=OFF" in lean.cmake_args() and lean.version.endswith(".nomtmd")


def test_sync_replaces_a_folder_by_a_file_and_back_and_leaves_equal_symlinks_alone(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "was-dir").parent.mkdir(parents=True)
    (src / "was-dir").write_text("now a file\n")
    (src / "was-file").mkdir()
    (src / "was-file" / "inner.c").write_text("now under a folder\n")
    (src / "link").symlink_to("was-dir")
    (dst / "was-dir").mkdir(parents=True)
    (dst / "was-dir" / "old.c").write_text("gone\n")
    (dst / "was-file").write_text("gone\n")
    (dst / "stale.c").write_text("not in src\n")
    assert stage._sync(src, dst) == 3
    assert (dst / "was-dir").read_text() == "now a file\n"
    assert (dst / "was-file" / "inner.c").read_text() == "now under a folder\n"
    assert os.readlink(dst / "link") == "was-dir" and not (dst / "stale.c").exists()
    assert stage._sync(src, dst) == 0


def _wheel_with(tmp_path: Path, source: str, cflags: list[str], manifest: bool) -> Path:
    lib = tmp_path / "libggml-cpu.so"
    c = tmp_path / "k.c"
    c.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", *cflags, "-o", lib, c], check=True)
    wheel = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(lib, "llama_cpp/lib/libggml-cpu.so")
        if manifest:
            zf.writestr(f"llama_cpp/{MANIFEST}", "{}")
    return wheel


def test_wheel_checks_read_the_libraries_not_the_spec(
    catalogue: Catalogue, tmp_path: Path, no_network_git: Path
) -> None:
    recipe = _recipe(catalogue, "noomp-gcc", 'toolchain = "gcc"\n[cmake]\nGGML_OPENMP = false\n')
    plain = "int k(int n) { int s = 0; for (int i = 0; i < n; i++) s += i; return s; }\n"
    (tmp_path / "a").mkdir()
    checks, holds = check.run(recipe, _wheel_with(tmp_path / "a", plain, [], True), tmp_path / "a")
    by = {c.name: c for c in checks}
    assert by["openmp"].ok and by["compiler"].ok and by["manifest"].ok, by
    assert holds["libraries"] == ["libggml-cpu.so"]
    assert [f["option"] for f in holds["forced"]] == ["BUILD_SHARED_LIBS"]
    shared = _recipe(catalogue, "shared-gcc", 'toolchain = "gcc"\n[cmake]\nBUILD_SHARED_LIBS = true\n')
    assert check.forced(shared, [tmp_path / "a" / "libggml-cpu.so"], {}) == []  # asked ON, got ON

    # The same library built with OpenMP: the variant says off, the wheel would call libgomp.
    omp = (
        "#include <omp.h>\nint k(void) { int s = 0;\n"
        "#pragma omp parallel reduction(+:s)\n s += omp_get_thread_num(); return s; }\n"
    )
    (tmp_path / "b").mkdir()
    checks, _ = check.run(recipe, _wheel_with(tmp_path / "b", omp, ["-fopenmp"], False), tmp_path / "b")
    by = {c.name: c for c in checks}
    assert not by["openmp"].ok and "GGML_OPENMP is off but ['libggml-cpu.so']" in by["openmp"].detail
    assert not by["manifest"].ok
