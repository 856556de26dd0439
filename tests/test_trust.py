"""A binary is exactly what its manifest says: verification that cannot be fooled, a hash and
a build that mean what they say, and publication that survives kill -9 and concurrent readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.layout import Layout
from builder.models import installed
from builder.plan import plan as plan_mod
from builder.verify import elf

from .conftest import REPO, Catalogue, Outcome
from .fakes import make_patch
from .tools import need

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


def _manifest(cat: Catalogue, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cat.dist / name / "manifest.json").read_text())
    return data


def _refused(cat: Catalogue, run: Run, name: str, *needles: str) -> Outcome:
    """The build fails verification (exit 1), says why, and publishes nothing."""
    res = run(cat.root, "build", name)
    assert res.code == 1, (res.code, res.err[-2000:])
    assert "does not match its spec" in res.err
    for needle in needles:
        assert needle in res.err, res.err[-2000:]
    assert not (cat.dist / name).exists()
    return res


# --- verification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "toolchain, entry",
    [
        ("gcc", "GOMP_"),
        ("clang", "__kmpc_"),
    ],
)
def test_openmp_linked_but_never_called_is_refused(
    catalogue: Catalogue, run: Run, toolchain: str, entry: str
) -> None:
    if toolchain == "clang":
        need("clang-19")
    # The runtime is in NEEDED (the fake links OpenMP) but no parallel region is compiled in:
    # what clang-19 does to a GGML_OPENMP build whose -DGGML_USE_OPENMP was undone.
    catalogue.variant("idle", TARGETS + f'toolchain = "{toolchain}"\n[cmake]\nFAKE_OPENMP_UNUSED = true\n')
    # gcc drops libgomp from NEEDED when nothing calls it, clang-19 keeps libomp: refused either way
    _refused(catalogue, run, "idle", "GGML_OPENMP is on but", f"{entry}*")
    catalogue.variant("busy", TARGETS + f'toolchain = "{toolchain}"\n')
    assert run(catalogue.root, "build", "busy").code == 0
    detail = next(c["detail"] for c in _manifest(catalogue, "busy")["verification"] if c["check"] == "openmp")
    assert f"({entry}*)" in detail and "test-barrier" in detail


def test_a_compiler_string_that_is_neither_the_toolchain_nor_the_runtime_is_named(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("mixed", TARGETS + "[cmake]\nFAKE_IDENT = true\n")
    _refused(catalogue, run, "mixed", "Foreign Compiler 9.9", "neither the toolchain nor the C runtime")


def test_sanitizer_is_verified_and_removing_the_key_really_removes_it(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("tsan", TARGETS + "[cmake]\nGGML_SANITIZE_THREAD = true\n")
    res = run(catalogue.root, "build", "tsan")
    assert res.code == 0, res.err[-2000:]
    checks = {c["check"]: c["detail"] for c in _manifest(catalogue, "tsan")["verification"]}
    assert checks["sanitizers"] == "thread in every binary"
    assert elf.read(catalogue.dist / "tsan" / "bin" / "test-barrier").mentions("__tsan_")
    # The key removed: CMake's cache would keep it ON; the configure must start afresh.
    catalogue.variant("tsan", TARGETS)
    res = run(catalogue.root, "build", "tsan")
    assert res.code == 0, res.err[-2000:]
    assert "afresh" in res.err
    assert not elf.read(catalogue.dist / "tsan" / "bin" / "test-barrier").mentions("__tsan_")
    cache = (catalogue.home / "work" / "tsan" / "build" / "CMakeCache.txt").read_text()
    assert "GGML_SANITIZE_THREAD:BOOL=OFF" in cache
    # A project that ignores the option is caught in the binary.
    catalogue.variant("deaf", TARGETS + "[cmake]\nGGML_SANITIZE_THREAD = true\nFAKE_IGNORE_SANITIZE = true\n")
    _refused(catalogue, run, "deaf", "thread sanitizer on, but")


def test_clang_tsan_carries_ubsan_handlers_in_its_runtime_and_is_not_refused_for_them(
    catalogue: Catalogue, run: Run
) -> None:
    need("clang-19")
    # compiler-rt's static TSan runtime defines __ubsan_* handlers: not a sign of -fsanitize=undefined.
    catalogue.variant("tsan", TARGETS + 'toolchain = "clang"\n[cmake]\nGGML_SANITIZE_THREAD = true\n')
    res = run(catalogue.root, "build", "tsan")
    assert res.code == 0, res.err[-2000:]
    assert elf.read(catalogue.dist / "tsan" / "bin" / "test-barrier").mentions("__ubsan_")
    checks = {c["check"]: c["detail"] for c in _manifest(catalogue, "tsan")["verification"]}
    assert (
        checks["sanitizers"] == "thread in every binary (__ubsan_* come with the thread sanitizer's runtime)"
    )


def test_debug_info_and_compile_flags_follow_the_build_type(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("dbg", TARGETS + "[cmake]\nFAKE_FORCE_DEBUG = true\n")
    _refused(catalogue, run, "dbg", "Release:", "carry .debug_info")
    catalogue.variant("noopt", TARGETS + "[cmake]\nFAKE_DROP_RELEASE_FLAGS = true\n")
    _refused(catalogue, run, "noopt", "compiled without ['-O3', '-DNDEBUG']")
    catalogue.variant("rel", TARGETS + 'build-type = "RelWithDebInfo"\n')
    assert run(catalogue.root, "build", "rel").code == 0
    checks = {c["check"]: c["detail"] for c in _manifest(catalogue, "rel")["verification"]}
    assert "-O2 -g -DNDEBUG" in checks["compile"] and "in every binary" in checks["debug-info"]


# --- warnings in patched files ------------------------------------------------------------


def test_a_warning_in_a_patched_file_fails_the_build_again_and_again(catalogue: Catalogue, run: Run) -> None:
    sdir = catalogue.series("noisy")
    make_patch(
        catalogue.upstream.path,
        sdir,
        name="noisy",
        old="int ggml_barrier_kind(void) { return 0; }",
        new='#warning "left in by the patch"\nint ggml_barrier_kind(void) { return 0; }',
    )
    catalogue.variant("noisy", TARGETS + 'patches = ["noisy"]\n')
    _refused(
        catalogue, run, "noisy", "warnings:", "lines the patches change", '#warning "left in by the patch"'
    )
    # Run again: nothing recompiles and the log says nothing, the ledger still does.
    res = _refused(catalogue, run, "noisy", "left in by the patch")
    assert "Building C object" not in (catalogue.home / "work" / "noisy" / "build.log").read_text()
    # A sibling in another worktree gets ggml.c from the cache, warning replayed: refused too.
    catalogue.variant("noisy2", TARGETS + 'patches = ["noisy"]\n[cmake]\nFAKE_ECHO = "sibling"\n')
    res = _refused(catalogue, run, "noisy2", "left in by the patch")
    assert _ccache_hits(catalogue, "noisy2") > 0, res.err


def test_a_warning_of_the_project_itself_in_a_patched_file_is_not_the_patchs(
    catalogue: Catalogue, run: Run
) -> None:
    """Forks carry warnings of their own in ggml.c; a port that touches other lines of it is clean."""
    sdir = catalogue.series("quiet")
    make_patch(catalogue.upstream.path, sdir, name="quiet", old="return 0; }", new="return 2; }")
    catalogue.variant("quiet", TARGETS + 'patches = ["quiet"]\n[cmake]\nFAKE_OWN_WARNING = true\n')
    res = run(catalogue.root, "build", "quiet")
    assert res.code == 0, res.err[-2000:]
    assert "the project's own" in (catalogue.home / "work" / "quiet" / "build.log").read_text()
    detail = next(
        c["detail"] for c in _manifest(catalogue, "quiet")["verification"] if c["check"] == "warnings"
    )
    assert detail == "no compiler warnings in the lines the patches change (1 file(s))"


def _ccache_hits(cat: Catalogue, name: str) -> int:
    log = cat.home / "work" / name / "ccache-stats.log"
    return log.read_text().count("direct_cache_hit") if log.is_file() else 0


# --- the build's inputs -------------------------------------------------------------------


def test_the_callers_environment_does_not_reach_the_compiler(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leak = tmp_path / "inc"
    leak.mkdir()
    (leak / "variant_env_leak.h").write_text("/* found through CPATH */\n")
    monkeypatch.setenv("CPATH", str(leak))
    monkeypatch.setenv("CCACHE_DISABLE", "1")
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    out = subprocess.run([catalogue.dist / "v" / "bin" / "test-barrier"], capture_output=True, text=True)
    assert "leak=0" in out.stdout
    m = _manifest(catalogue, "v")
    assert "CPATH" not in m["env"] and "CCACHE_DISABLE" not in m["env"] and m["env"]["LC_ALL"] == "C"
    assert m["ccache"]["hits"] + m["ccache"]["misses"] > 0  # CCACHE_DISABLE did not reach ccache


def test_the_hash_covers_cpu_cmake_and_origin(catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue.variant("native", TARGETS)
    catalogue.variant("portable", TARGETS + "[cmake]\nGGML_NATIVE = false\n")
    layout = Layout.at(catalogue.root)

    def hashes() -> tuple[str, str]:
        return plan_mod.make(layout, "native").hash, plan_mod.make(layout, "portable").hash

    before = hashes()
    assert dict(plan_mod.make(layout, "native").isa)["features"]  # this CPU's -march=native
    monkeypatch.setattr(
        plan_mod, "native_isa", lambda cc: {"march": "other-cpu", "features": ["__AVX512F__ 1"]}
    )
    other_cpu = hashes()
    assert other_cpu[0] != before[0] and other_cpu[1] == before[1]  # native builds only
    monkeypatch.undo()
    real = plan_mod.cmake_binary()
    monkeypatch.setattr(plan_mod, "cmake_binary", lambda: (real[0], (9, 9, 9)))
    assert hashes()[0] != before[0]
    monkeypatch.undo()
    # The same pin from its sdist is another tree than from git: another hash.
    from builder.plan import trees

    monkeypatch.setattr(trees, "expected_origin", lambda *a, **k: "pypi")
    assert hashes()[0] != before[0]
    monkeypatch.undo()
    assert hashes() == before


# --- statuses and refusals ----------------------------------------------------------------


def test_a_missing_compiler_is_a_status_not_an_invalid_spec(catalogue: Catalogue, run: Run) -> None:
    (catalogue.root / "toolchains" / "ghost.toml").write_text(
        'family = "clang"\ncc = ["ghost-cc-99"]\ncxx = ["ghost-c++-99"]\n'
        'install = "apt-get install -y ghost-99"\n'
    )
    catalogue.variant("haunted", TARGETS + 'toolchain = "ghost"\ndescription = "needs a ghost"\n')
    catalogue.variant("fine", TARGETS)
    listed = run(catalogue.root, "list", "--json")
    assert listed.code == 0, listed.err
    rows = {r["name"]: r for r in json.loads(listed.out)}
    assert rows["haunted"]["status"] == "needs ghost-cc-99" and rows["haunted"]["hash"] is None
    assert "apt-get install -y ghost-99" in rows["haunted"]["description"]
    assert rows["fine"]["status"] == "not built"
    shown = run(catalogue.root, "show", "haunted")
    assert shown.code == 0 and "needs ghost-cc-99" in shown.out and "apt-get install -y ghost-99" in shown.out
    built = run(catalogue.root, "build", "haunted")
    assert built.code == 2 and "no C compiler found (tried ghost-cc-99)" in built.err
    assert not (catalogue.dist / "haunted").exists()


def test_smoke_of_a_variant_without_any_smoke_program_fails(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("other", 'targets = ["llama-other"]\n')
    assert run(catalogue.root, "build", "other").code == 0
    res = run(catalogue.root, "smoke", "other", "--json")
    assert res.code == 1
    (check,) = json.loads(res.out)
    assert (
        not check["ok"]
        and "none of the smoke programs" in check["detail"]
        and "llama-other" in check["detail"]
    )


# --- publication under kill -9 and concurrent readers ----------------------------------------

KILL_AT = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from builder.cli import main
    where = sys.argv[1]
    if where == "swap":  # after the temporary link exists, before the rename onto dist/NAME
        real_replace = os.replace
        def replace(src, dst, *a, **k):
            if str(src).endswith(".link"):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    else:  # half-way through copying the binaries into the new folder
        real_copy = shutil.copy2
        copied = []
        def copy2(src, dst, *a, **k):
            copied.append(src)
            if len(copied) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_copy(src, dst, *a, **k)
        shutil.copy2 = copy2
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize("where", ["copy", "swap"])
def test_kill_9_during_publish_leaves_the_old_variant_and_no_debris(
    catalogue: Catalogue, run: Run, where: str
) -> None:
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    old = (catalogue.dist / "v").resolve()
    old_hash = _manifest(catalogue, "v")["hash"]
    catalogue.variant("v", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, where, "--root", str(catalogue.root), "build", "v"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (catalogue.dist / "v").resolve() == old  # readers still see the old variant, whole
    assert _manifest(catalogue, "v")["hash"] == old_hash
    debris = [*catalogue.dist.glob(".v.*.link"), *(catalogue.dist / ".builds").glob("v-*.tmp")]
    assert debris, "the kill left nothing behind to clean: it did not hit publish"
    assert run(catalogue.root, "build", "v").code == 0
    assert _manifest(catalogue, "v")["cmake"]["GGML_OPENMP"] == "OFF"
    assert not [*catalogue.dist.glob(".v.*.link"), *(catalogue.dist / ".builds").glob("v-*.tmp")]
    assert [p.name for p in (catalogue.dist / ".builds").iterdir()] == [(catalogue.dist / "v").resolve().name]


def test_a_rebuild_does_not_pull_binaries_from_under_a_running_bench(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    layout = Layout.at(catalogue.root)
    with installed.held(layout, "v") as inst:
        old_hash = inst.manifest["hash"]
        catalogue.variant("v", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
        assert run(catalogue.root, "build", "v").code == 0
        assert _manifest(catalogue, "v")["hash"] != old_hash  # dist/v moved on...
        # ...but what this reader runs and records is still one consistent build.
        assert inst.manifest["hash"] == old_hash and (inst.bin / "test-barrier").is_file()
        out = subprocess.run([inst.bin / "test-barrier"], capture_output=True, text=True, check=True)
        assert "threads=1" in out.stdout
    # Released: the next publish removes the old folder.
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    assert not inst.bin.exists()
