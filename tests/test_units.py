"""Small pieces: the subprocess wrapper, ccache stats, progress, root discovery, doctor."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import run
from builder.build import configure as cmake
from builder.errors import CommandError, UserError
from builder.layout import find_root
from builder.progress import Progress

from .conftest import Outcome


def test_capture_refuses_a_command_string() -> None:
    with pytest.raises(TypeError):
        run.capture("echo hi; rm -rf /")


def test_capture_error_carries_command_code_and_stderr_tail() -> None:
    script = "import sys; print('\\n'.join(f'line {i}' for i in range(50)), file=sys.stderr); sys.exit(3)"
    with pytest.raises(CommandError) as info:
        run.capture([sys.executable, "-c", script])
    err = info.value
    assert err.returncode == 3 and err.argv[0] == sys.executable
    assert "line 49" in err.tail and "line 0\n" not in err.tail
    assert "exit code 3" in str(err)


def test_missing_program_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no-such-program-xyz: command not found"):
        run.capture(["no-such-program-xyz"])


def test_live_streams_to_log_and_callback(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    seen: list[str] = []
    run.live([sys.executable, "-c", "print('[1/2] a'); print('[2/2] b')"], log_file=log, on_line=seen.append)
    assert seen == ["[1/2] a", "[2/2] b"]
    text = log.read_text()
    assert text.startswith("$ ") and "[2/2] b" in text and "[exit 0]" in text
    with pytest.raises(CommandError) as info:
        run.live([sys.executable, "-c", "print('boom'); raise SystemExit(4)"], log_file=log)
    assert info.value.log == log and "boom" in info.value.tail and f"full log: {log}" in str(info.value)


def test_ccache_counts_classify_each_compilation(tmp_path: Path) -> None:
    log = tmp_path / "stats"
    log.write_text(
        f"# {tmp_path}/src/a.c\ncache_miss\ndirect_cache_miss\nlocal_storage_write\n"
        "# ../src/e.c\ncache_miss\n"
        "# b.c\ndirect_cache_hit\nlocal_storage_hit\n"
        "# c.c\npreprocessed_cache_hit\n"
        "# d.c\ncalled_for_preprocessing\n"
        "# f.c\ndirect_cache_hit\nlocal_storage_miss\nremote_storage_hit\n"
        "# g.c\ncache_miss\nremote_storage_error\n"
    )
    counts = cmake.ccache_counts(log, tmp_path / "build")
    assert counts == {
        "hits": 3,
        "misses": 3,
        "other": 1,
        "remote_hits": 1,
        "remote_errors": 1,
        "missed": ["src/a.c", "src/e.c", "build/g.c"],
    }
    empty = {"hits": 0, "misses": 0, "other": 0, "remote_hits": 0, "remote_errors": 0, "missed": []}
    assert cmake.ccache_counts(tmp_path / "none") == empty


def test_progress_prints_few_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    p = Progress("v: building", out)
    for i in range(1, 501):
        p.update(i, 500, f"obj{i}.o")
    p.close()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12 and lines[-1] == "v: building: 500/500 (100%)"


def test_root_is_found_upward(tmp_path: Path) -> None:
    (tmp_path / "variants").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    with pytest.raises(UserError, match="no catalogue found"):
        find_root(Path("/"))


def test_doctor_json_lists_every_tool(run: Callable[..., Outcome], tmp_path: Path) -> None:
    res = run(tmp_path, "doctor", "--json")
    data = json.loads(res.out)
    assert data["compiler_floors"] == []  # no catalogue here: the machine alone
    rows = {r["name"]: r for r in data["tools"]}
    assert {"gcc", "cmake", "ninja", "ccache", "git", "liburing", "uftrace", "perf", "clang"} <= set(rows)
    assert rows["git"]["ok"] and rows["git"]["version"].startswith("git version")
    missing = [r for r in rows.values() if not r["ok"]]
    assert all(r["install"] for r in missing)
    assert res.code == (1 if any(r["required"] for r in missing) else 0)


def test_measure_survives_invalid_utf8_and_counts_rusage() -> None:
    script = "import sys; sys.stdout.buffer.write(b'ok \\xd1\\xff end'); x = bytearray(20_000_000)"
    m = run.measure([sys.executable, "-c", script])
    assert m.returncode == 0 and m.stdout.startswith("ok ") and m.stdout.endswith(" end")
    assert m.maxrss_kib > 20_000 and m.minflt > 1000 and m.user_s + m.sys_s > 0
    slow = run.measure([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert slow.returncode is None and slow.wall_s < 3


def test_measure_reads_smaps_rollup_only_when_asked_and_then_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each read of /proc/PID/smaps_rollup walks the program's page tables under its lock: read
    every 50 ms, it cost the e2e suite's tg 8-12% on 2 CPUs (the futex barrier's more)."""
    reads: list[int] = []

    def counted(pid: int) -> int:
        reads.append(pid)
        return 2048

    monkeypatch.setattr(run, "_anon_huge_kib", counted)
    sleeper = [sys.executable, "-c", "import time; time.sleep(1.5)"]
    assert run.measure(sleeper).anon_huge_kib == 0 and reads == []
    m = run.measure(sleeper, huge_pages=True)
    # at 0.2 s and 1.2 s: not the 29 reads polling every 50 ms made
    assert m.anon_huge_kib == 2048 and len(reads) == 2, reads


def test_a_timeout_kills_the_program_behind_a_wrapper_too(tmp_path: Path) -> None:
    """perf record and uftrace record fork the program they profile: killing the wrapper is not enough."""
    pid_file = tmp_path / "pid"
    wrapper = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "child.wait()\n"
    )
    m = run.measure([sys.executable, "-c", wrapper], timeout=1.0)
    assert m.returncode is None
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # killed; reaped by init, or a zombie until then
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split(") ", 1)[1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the wrapped program {child} outlived the timeout")


def test_warnings_ledger_keeps_steps_that_did_not_run_and_maps_other_worktrees(tmp_path: Path) -> None:
    from builder.verify import warnings

    work = tmp_path / "work"
    wt, build = work / "mine" / "src", work / "mine" / "build"
    build.mkdir(parents=True)
    cpu = "ggml/src/ggml-cpu/ggml-cpu.c"
    first = warnings.Collector()
    for line in [
        "[1/3] Building C object ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu.c.o",
        # ccache's base_dir makes the compiler's paths relative to the build folder
        f"../src/{cpu}:617:24: warning: cast discards '_Atomic' [-Wcast-qual]",
        "[2/3] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
        f"{wt}/ggml/src/ggml.c:10:1: warning: upstream's own, not ours [-Wunused]",
        f"{wt}/{cpu}:700:3: error: not a warning",
        "[3/3] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o",
        # a cache hit replayed from a sibling variant names the sibling's worktree
        f"{work}/other/src/src/llama.cpp:5:1: warning: from the other worktree [-Wshadow]",
    ]:
        first.line(line)
    ledger = warnings.update(build, first)
    patched = {cpu: {617}, "src/llama.cpp": {4, 5, 6}}
    assert warnings.at_lines(ledger, build, wt, work, patched) == [
        f"{cpu}:617: cast discards '_Atomic' [-Wcast-qual]",
        "src/llama.cpp:5: from the other worktree [-Wshadow]",
    ]
    # a warning in a patched file, on a line the patches did not touch, is not theirs
    assert warnings.at_lines(ledger, build, wt, work, {cpu: {616, 618}}) == []
    # A rerun that compiles nothing keeps what the steps said; one that recompiles a step replaces it.
    again = warnings.Collector()
    again.line("[1/1] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o")
    ledger = warnings.update(build, again)
    assert warnings.at_lines(ledger, build, wt, work, patched) == [
        f"{cpu}:617: cast discards '_Atomic' [-Wcast-qual]"
    ]
    assert warnings.at_lines(ledger, build, wt, work, {"src/llama.h": {5}}) == []


def test_probe_keeps_the_driver_name_a_symlink_was_called_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clang++ -> clang: the C++ driver must be invoked by its own name."""
    from builder.spec import toolchain

    real = tmp_path / "fakecc"
    real.write_text("#!/bin/sh\necho 'fake clang version 19.1.7'\n")
    real.chmod(0o755)
    (tmp_path / "fakecc++").symlink_to(real)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    toolchain.probe.cache_clear()
    found = toolchain.probe("fakecc++")
    assert found is not None and found.path == str(tmp_path / "fakecc++")
    assert found.version == (19, 1, 7)


def test_a_commands_help_needs_no_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`variant build --help` outside a catalogue printed "no catalogue found" (exit 2)."""
    monkeypatch.delenv("VARIANT_ROOT", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "VARIANT_ROOT"}
    for args in (["build", "--help"], ["smoke", "--help"], ["patch", "edit", "--help"]):
        out = subprocess.run(["variant", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.startswith("Usage: variant "), out.stderr
    out = subprocess.run(["variant", "build", "x"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "no catalogue found" in out.stderr, out.stderr
