"""Programs under test run in a scratch folder and get paths they can take (builder/scratch.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import scratch

from .conftest import Catalogue, Outcome

Run = Callable[..., Outcome]


def test_smoke_in_a_folder_with_a_space_leaves_no_log_and_feeds_every_program_a_path_it_can_take(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The models live under a path with a space and a non-ASCII letter, as in a new user's clone;
    # the fake llama-bench splits -m at spaces (as BitNet's does) and every fake program writes
    # llama.log into its working directory (as ik_llama.cpp's do).
    monkeypatch.setenv("VARIANT_HOME", str(tmp_path / "new user ü" / "home"))
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)
    catalogue.variant("v", 'targets = ["llama-simple", "llama-bench", "test-barrier"]\n')
    assert run(catalogue.root, "build", "v").code == 0
    res = run(catalogue.root, "smoke", "v", "--json")
    assert res.code == 0, res.out + res.err
    checks = {c["binary"]: c for c in json.loads(res.out)}
    assert checks["llama-bench"]["ok"] and "tg 12.5 tokens/s" in checks["llama-bench"]["detail"]
    # what the user sees is the model's real path, not the link it ran through
    assert "new user ü" in checks["llama-bench"]["command"]
    left = [p for p in (caller, catalogue.root) for p in p.rglob("llama.log")]
    assert left == []


def test_a_plain_path_is_itself_and_any_other_is_a_stable_link(tmp_path: Path) -> None:
    plain = tmp_path / "model.gguf"
    plain.write_bytes(b"GGUF")
    assert scratch.takeable(plain) == plain
    odd = tmp_path / "new user ü, copy" / "model.gguf"
    odd.parent.mkdir()
    odd.write_bytes(b"GGUF")
    link = scratch.takeable(odd)
    assert scratch.plain(str(link)) and link.name.endswith("model.gguf")
    assert link.resolve() == odd.resolve() and scratch.takeable(odd) == link
    assert scratch.argv([str(odd), "-m", str(odd), "-p", "a prompt, with words"]) == [
        str(odd),  # the program itself is exec'd as it is
        "-m",
        str(link),
        "-p",
        "a prompt, with words",  # not a file: passed through
    ]


def test_a_killed_runs_scratch_folder_is_removed_by_the_next_run_and_a_live_ones_kept(tmp_path: Path) -> None:
    stale, live, making = (tmp_path / f"{scratch.PREFIX}{n}" for n in ("1-dead", "2-live", "3-new"))
    for d in (stale, live, making):
        d.mkdir()
        (d / "llama.log").write_text("x")
    (stale / scratch.ALIVE).touch()  # its run died: nobody holds the lock
    (live / scratch.ALIVE).touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(live / scratch.ALIVE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        scratch._clean_stale(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    # a folder without its lock file yet is being made right now: kept (removed once a minute old)
    assert not stale.exists() and live.exists() and making.exists()
    os.utime(making, (time.time() - 120, time.time() - 120))
    scratch._clean_stale(tmp_path)
    assert not making.exists() and not live.exists()  # its holder is gone now too


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_program_a_wrapper_runs_keeps_its_own_name(tmp_path: Path) -> None:
    """The kernel names a process after the file exec'd: a wrapped program in a folder with a space
    must still be llama-completion to ps, perf and offcputime (it ran as a hashed link's name)."""
    program = tmp_path / "new user ü" / "bin" / "llama-completion"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\nread name < /proc/$$/comm\necho $name\n")
    program.chmod(0o755)
    ran = scratch.argv(["sh", "-c", 'exec "$@"', "sh", str(program)])
    assert ran[:4] == ["sh", "-c", 'exec "$@"', "sh"] and scratch.plain(ran[4])
    assert Path(ran[4]).name == "llama-completion" and Path(ran[4]).resolve() == program.resolve()
    shown = subprocess.run(ran, capture_output=True, text=True, check=True).stdout.strip()
    assert shown == "llama-completio"  # the kernel keeps 15 bytes of the name
