"""End-to-end builds of the fake upstream: real git, CMake, Ninja, gcc, ELF checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder import lock
from builder.layout import Layout
from builder.publish import publish as install
from builder.spec.variant import DEFAULT_TARGETS

from .conftest import Catalogue, Outcome
from .fakes import git, make_patch
from .tools import need

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


def _manifest(cat: Catalogue, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cat.dist / name / "manifest.json").read_text())
    return data


def _binary(cat: Catalogue, name: str, prog: str) -> str:
    return subprocess.run([cat.dist / name / "bin" / prog], capture_output=True, text=True, check=True).stdout


def test_build_publishes_verified_binaries_and_manifest(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("base", 'description = "the baseline"\n' + TARGETS)
    res = run(catalogue.root, "build", "base")
    assert res.code == 0, res.err
    assert "test-barrier ok" in _binary(catalogue, "base", "test-barrier")
    assert str(catalogue.dist / "base" / "bin" / "llama-simple") in res.out
    m = _manifest(catalogue, "base")
    assert m["variant"] == "base" and len(m["hash"]) == 64
    assert m["source"]["origin"] == "git" and m["source"]["commit"] == catalogue.upstream.commit
    assert m["toolchain"]["cc_version"].startswith("gcc")
    assert m["cmake"]["BUILD_SHARED_LIBS"] == "OFF"
    assert {b["name"] for b in m["binaries"]} == {"test-barrier", "llama-simple"}
    assert [c["check"] for c in m["verification"]] == [
        "openmp",
        "compiler",
        "sanitizers",
        "instrument",
        "debug-info",
        "kernels",
        "series-code",
        "cmake",
        "compile",
        "patches",
        "warnings",
    ]
    assert all(c["ok"] for c in m["verification"])
    assert "libgomp" in next(c for c in m["verification"] if c["check"] == "openmp")["detail"]
    assert m["ccache"]["misses"] + m["ccache"]["hits"] >= 3
    assert m["build_seconds"] > 0
    # dist/<variant> is a link onto a complete folder
    assert (catalogue.dist / "base").is_symlink()


def test_second_build_is_a_noop_and_list_tracks_staleness(catalogue: Catalogue, run: Run) -> None:
    path = catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    first = _manifest(catalogue, "v")
    t0 = time.monotonic()
    res = run(catalogue.root, "build", "v")
    assert res.code == 0 and "up to date" in res.err and "nothing to do" in res.err
    assert time.monotonic() - t0 < 2.0
    assert _manifest(catalogue, "v")["built_at"] == first["built_at"]
    rows = json.loads(run(catalogue.root, "list", "--json").out)
    assert rows == [{"name": "v", "status": "up to date", "hash": first["hash"], "description": ""}]
    path.write_text(TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    rows = json.loads(run(catalogue.root, "list", "--json").out)
    assert rows[0]["status"] == "stale" and rows[0]["hash"] != first["hash"]


def test_openmp_off_takes_effect_and_misconfiguration_fails(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("off", TARGETS + "[cmake]\nGGML_OPENMP = false\n")
    assert run(catalogue.root, "build", "off").code == 0
    check = next(c for c in _manifest(catalogue, "off")["verification"] if c["check"] == "openmp")
    assert check["ok"] and "no OpenMP" in check["detail"]
    # A project that ignores the switch produces a binary that is not what the spec says.
    catalogue.variant("liar", TARGETS + "[cmake]\nGGML_OPENMP = false\nFAKE_LINK_OPENMP_ANYWAY = true\n")
    res = run(catalogue.root, "build", "liar")
    assert res.code == 1
    assert "does not match its spec" in res.err and "GGML_OPENMP is off but" in res.err
    assert not (catalogue.dist / "liar").exists()


def test_uftrace_instrument_is_verified(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("trace", TARGETS + 'instrument = "uftrace"\nbuild-type = "RelWithDebInfo"\n')
    assert run(catalogue.root, "build", "trace").code == 0
    checks = {c["check"]: c for c in _manifest(catalogue, "trace")["verification"]}
    assert "__cyg_profile_func_enter referenced" in checks["instrument"]["detail"]
    assert "-finstrument-functions" in checks["compile"]["detail"]
    assert checks["debug-info"]["ok"] and "in every binary" in checks["debug-info"]["detail"]
    # clang hooks after inlining (its plain flag leaves libstdc++ inline members undefined at link)
    need("clang-19")
    catalogue.variant("trace-cl", TARGETS + 'instrument = "uftrace"\ntoolchain = "clang"\n')
    assert run(catalogue.root, "build", "trace-cl").code == 0
    checks = {c["check"]: c for c in _manifest(catalogue, "trace-cl")["verification"]}
    assert "__cyg_profile_func_enter referenced" in checks["instrument"]["detail"]
    assert "-finstrument-functions-after-inlining" in checks["compile"]["detail"]


def test_clang_variant_is_compiled_by_clang(catalogue: Catalogue, run: Run) -> None:
    need("clang-19")
    catalogue.variant("cl", TARGETS + 'toolchain = "clang"\n')
    res = run(catalogue.root, "build", "cl")
    assert res.code == 0, res.err
    checks = {c["check"]: c for c in _manifest(catalogue, "cl")["verification"]}
    assert "clang version" in checks["compiler"]["detail"]
    assert "libomp" in checks["openmp"]["detail"]


def test_shell_metacharacters_reach_cmake_literally(catalogue: Catalogue, run: Run) -> None:
    nasty = "a b;$(touch pwned) `id` 'q' \"d\" | & > x"
    catalogue.variant("meta", TARGETS + f"[cmake]\nFAKE_ECHO = '''{nasty}'''\n")
    assert run(catalogue.root, "build", "meta").code == 0
    build = catalogue.home / "work" / "meta" / "build"
    assert (build / "echo.txt").read_text() == nasty
    assert not list(catalogue.root.rglob("pwned"))


def test_unknown_target_fails_before_building(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", 'targets = ["test-barier"]\n')
    res = run(catalogue.root, "build", "v")
    assert res.code == 2 and 'no target "test-barier"' in res.err and 'did you mean "test-barrier"' in res.err
    catalogue.variant("w", 'targets = ["not-a-program"]\n')
    res = run(catalogue.root, "build", "w")
    assert res.code == 2 and "STATIC_LIBRARY, not a program" in res.err
    assert not (catalogue.root / "dist").exists()


def test_show_prints_hash_and_exact_commands(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("_off", "[cmake]\nGGML_OPENMP = false\n[flags]\nc = ['-DX=1']\n")
    catalogue.variant("v", 'extends = ["_off"]\n[flags]\nc = ["-DY=2"]\n')
    data = json.loads(run(catalogue.root, "show", "v", "--json").out)
    assert data["extends"] == ["_off"]
    assert "-DGGML_OPENMP=OFF" in data["configure"]
    assert "-DCMAKE_C_FLAGS=-DX=1 -DY=2" in data["configure"]  # lists append: mixin first
    assert data["build"][1:3] == ["-C", str(catalogue.home / "work" / "v" / "build")]
    assert data["build"][0].endswith("ninja") and data["build"][3:] == list(DEFAULT_TARGETS)
    text = run(catalogue.root, "show", "v").out
    assert data["hash"] in text and "cmake -S" in text and "GGML_OPENMP=OFF" in text


def test_hash_covers_options_and_patches_but_not_descriptions(catalogue: Catalogue, run: Run) -> None:
    def h() -> str:
        return str(json.loads(run(catalogue.root, "show", "v", "--json").out)["hash"])

    catalogue.variant("v", 'description = "one"\n')
    first = h()
    catalogue.variant("v", 'description = "two"\n')
    assert h() == first
    catalogue.variant("v", "[cmake]\nGGML_NATIVE = false\n")
    assert h() != first
    sdir = catalogue.series("s")
    patch = make_patch(catalogue.upstream.path, sdir, name="k", old="return 0; }", new="return 2; }")
    catalogue.variant("v", 'patches = ["s"]\n')
    with_patch = h()
    patch.write_text(patch.read_text() + "\n")
    assert h() != with_patch


def test_concurrent_build_waits_or_refuses(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", TARGETS)
    layout = Layout.at(catalogue.root)
    with lock.hold(layout.lock("variant-v"), "test"):
        res = run(catalogue.root, "build", "v", "--lock-timeout", "0.5")
    assert res.code == 2 and "still in use by another process" in res.err and str(os.getpid()) in res.err
    assert not (catalogue.dist / "v").exists()
    assert run(catalogue.root, "build", "v").code == 0


def test_kill_9_during_build_leaves_no_partial_dist(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("slow", TARGETS + "[cmake]\nFAKE_SLOW = true\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "builder.cli", "--root", str(catalogue.root), "build", "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def sleepers() -> list[int]:
        found = []
        for d in Path("/proc").iterdir():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd[1:4] == [b"-E", b"sleep", b"30"]:  # the fake's slow step, nothing else
                found.append(int(d.name))
        return found

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sleepers():
        time.sleep(0.1)
    assert sleepers(), "the build never reached its slow step"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Its build children die with it (PR_SET_PDEATHSIG), they do not build on unattended.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sleepers():
        time.sleep(0.1)
    assert not sleepers()
    assert not (catalogue.dist / "slow").exists()
    assert (
        not list((catalogue.dist / ".builds").glob("slow-*"))
        if (catalogue.dist / ".builds").exists()
        else True
    )
    # The kernel released the lock with the process; the next build goes through.
    catalogue.variant("slow", TARGETS)
    assert run(catalogue.root, "build", "slow").code == 0
    assert "test-barrier ok" in _binary(catalogue, "slow", "test-barrier")


def test_republish_swaps_atomically_and_cleans_old(catalogue: Catalogue, run: Run) -> None:
    path = catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    old_target = os.readlink(catalogue.dist / "v")
    path.write_text(TARGETS + "[flags]\nc = ['-DSOMETHING']\n")
    assert run(catalogue.root, "build", "v").code == 0
    new_target = os.readlink(catalogue.dist / "v")
    assert new_target != old_target
    assert not (catalogue.dist / old_target).exists()
    assert install.read_manifest(Layout.at(catalogue.root), "v") is not None


def test_insteadof_is_honoured(catalogue: Catalogue, run: Run, no_network_git: Path) -> None:
    fake_url = "https://git.invalid/ggml-org/llama.cpp"
    no_network_git.write_text(f'[url "{catalogue.upstream.path}"]\n\tinsteadOf = {fake_url}\n')
    (catalogue.root / "sources.toml").write_text(
        f'["llama.cpp"]\nurl = "{fake_url}"\ncommit = "{catalogue.upstream.commit}"\n'
    )
    catalogue.variant("v", TARGETS)
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.err
    m = _manifest(catalogue, "v")
    assert m["source"]["url"] == fake_url and m["source"]["origin"] == "git"


def test_submodules_are_checked_out(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local file:// submodules are off by default since git 2.38; allowed for this test only.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.file.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    sub = tmp_path / "kernels"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "master")
    (sub / "lut.h").write_text("#define LUT_KERNEL 1\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "kernels")
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(catalogue.upstream.path), str(fork))
    git(fork, "submodule", "add", "-q", str(sub), "3rdparty/kernels")
    git(fork, "commit", "-q", "-m", "add kernels")
    commit = git(fork, "rev-parse", "HEAD")
    (catalogue.root / "sources.toml").write_text(
        f'["llama.cpp"]\nurl = "{fork}"\ncommit = "{commit}"\nsubmodules = true\n'
    )
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    assert (catalogue.home / "work" / "v" / "src" / "3rdparty" / "kernels" / "lut.h").is_file()


def test_requires_missing_tool_is_a_user_error(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue.variant("v", TARGETS + 'requires = ["uftrace"]\n')
    # A PATH with the compilers but without uftrace: the check runs before anything is built.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("gcc", "g++", "git"):
        (bindir / tool).symlink_to(shutil.which(tool) or tool)
    monkeypatch.setenv("PATH", str(bindir))
    res = run(catalogue.root, "build", "v")
    assert res.code == 2, res.err
    assert "requires uftrace" in res.err and "apt-get install -y uftrace" in res.err
    assert not catalogue.dist.exists()


def test_build_failure_shows_tail_and_log(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("broken", TARGETS + "[flags]\nc = ['-include', 'no-such-header.h']\n")
    res = run(catalogue.root, "build", "broken")
    assert res.code == 1
    assert "no-such-header.h" in res.err and "full log:" in res.err
    assert not (catalogue.dist / "broken").exists()


def test_changing_a_variants_source_replaces_its_worktree(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    catalogue.variant("v", TARGETS)
    assert run(catalogue.root, "build", "v").code == 0
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(catalogue.upstream.path), str(fork))
    (fork / "FORK").write_text("a fork\n")
    git(fork, "add", "FORK")
    git(fork, "commit", "-q", "-m", "fork")
    with open(catalogue.root / "sources.toml", "a") as fh:
        fh.write(f'["fork"]\nurl = "{fork}"\ncommit = "{git(fork, "rev-parse", "HEAD")}"\n')
    catalogue.variant("v", TARGETS + 'source = "fork"\n')
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.err
    assert "belongs to another source" in res.err
    assert (catalogue.home / "work" / "v" / "src" / "FORK").is_file()
