"""`variant run VARIANT PROGRAM [ARGS...]` (builder/cli/run.py) on a fake installed variant: shell scripts
in bin/, a manifest with a runtime env. The program replaces the process (execve), so every case that
runs one drives `python -m builder.cli` in a child; those that refuse before running are in-process."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.layout import Layout
from builder.lock import try_exclusive
from builder.publish.publish import in_use_lock

from .conftest import Outcome

Run = Callable[..., Outcome]

PROGRAMS = {
    # each argument on a line of its own, then what the runtime env and the folder are
    "show-args": 'for a in "$@"; do echo "arg:$a"; done; echo "kcfg:$TMAC_KCFG_FILE"; echo "cwd:$(pwd)"',
    "exit-with": 'exit "$1"',
    "kill-self": "kill -TERM $$",
    "wait-for-input": "echo ready; read line; echo got:$line",
    "llama-quantize": "exit 0",
    "say-forever": "while :; do echo y; done",
}


@dataclass(frozen=True)
class Fake:
    root: Path
    folder: Path  # dist/.builds/v-..., what dist/v links to

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "builder.cli", "--root", str(self.root), *args]

    def cli(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fake:
    """A catalogue with dist/v published as a build would publish it, without building anything."""
    monkeypatch.delenv("VARIANT_HOME", raising=False)
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    folder = root / "dist" / ".builds" / "v-0123456789ab-cafe0001"
    (folder / "bin").mkdir(parents=True)
    (folder / "share").mkdir()
    (folder / "share" / "kcfg.ini").write_text("[kernel]\n")
    for name, body in PROGRAMS.items():
        path = folder / "bin" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    (folder / "bin" / "README.txt").write_text("not a program: not executable\n")
    manifest = {
        "variant": "v",
        "hash": "0123456789ab",
        "source": {"name": "t-mac", "commit": "0" * 40, "origin": "git"},
        "toolchain": {"name": "gcc"},
        "runtime": {"files": ["share/kcfg.ini"], "env": {"TMAC_KCFG_FILE": "{share}/kcfg.ini"}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (root / "dist" / "v").symlink_to(Path(".builds") / folder.name)
    return Fake(root, folder)


def test_args_reach_the_program_verbatim_with_the_runtime_env_in_the_callers_folder(
    fake: Fake, tmp_path: Path
) -> None:
    here = tmp_path / "work dir"
    here.mkdir()
    words = ["--help", "-m", "in put.gguf", "--", "--list", "Q4_K_M", "ü", ""]
    kcfg = fake.folder / "share" / "kcfg.ini"
    for lead in ([], ["--"]):  # `variant run v -- PROGRAM ...`: the separator is optional
        done = fake.cli("-v", "run", "v", *lead, "show-args", *words, cwd=here)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [*(f"arg:{w}" for w in words), f"kcfg:{kcfg}", f"cwd:{here}"]
        # the note names the binary and the environment from the manifest; -v logs the command line
        binary = fake.folder / "bin" / "show-args"
        assert f"variant run: {binary} TMAC_KCFG_FILE={kcfg}\n" in done.stderr
        assert f"$ {shlex.join([str(binary), *words])}\n" in done.stderr


def test_the_exit_code_is_the_programs_and_a_signal_is_128_plus_it(fake: Fake, tmp_path: Path) -> None:
    for code in (0, 1, 3, 42):
        assert fake.cli("run", "v", "exit-with", str(code), cwd=tmp_path).returncode == code
    # the program replaced `variant run`: killed by SIGTERM, as a shell sees it (128 + 15)
    line = f'{shlex.join(fake.argv("run", "v", "kill-self"))}; echo "status:$?"'
    shell = subprocess.run(["sh", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert shell.stdout.strip() == "status:143", shell.stderr


def test_a_program_writing_into_a_closed_pipe_dies_of_sigpipe_as_it_would_run_directly(
    fake: Fake, tmp_path: Path
) -> None:
    # Python ignores SIGPIPE, and an ignored signal stays ignored across exec: the loop would never end
    line = f"{shlex.join(fake.argv('run', 'v', 'say-forever'))} | head -n 1"
    with subprocess.Popen(
        ["sh", "-c", line], cwd=tmp_path, stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as shell:
        try:
            out, _ = shell.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the loop, when it outlived head
                os.killpg(shell.pid, signal.SIGKILL)
    assert (shell.returncode, out) == (0, "y\n")


def test_the_variant_stays_held_while_the_program_runs_with_stdin_inherited(
    fake: Fake, tmp_path: Path
) -> None:
    lock = in_use_lock(Layout.at(fake.root), fake.folder)
    with subprocess.Popen(
        fake.argv("run", "v", "wait-for-input"),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline() == "ready\n"
            # what publish tries before it deletes an old build: refused while the program runs
            assert try_exclusive(lock) is None
            proc.stdin.write("hello\n")
            proc.stdin.close()
            assert proc.stdout.read() == "got:hello\n"
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.wait(timeout=30) == 0
    fd = try_exclusive(lock)
    assert fd is not None  # released when the program exited
    os.close(fd)


def test_list_prints_the_programs_one_per_line(fake: Fake, run: Run) -> None:
    expected = "".join(f"{n}\n" for n in sorted(PROGRAMS))  # README.txt is not executable: not listed
    for args in (("run", "v", "--list"), ("run", "--list", "v")):
        res = run(fake.root, *args)
        assert (res.code, res.out) == (0, expected), res.err
    res = run(fake.root, "run", "v", "--list", "show-args")
    assert res.code == 2 and "runs none" in res.err


def test_an_unknown_program_is_exit_2_with_a_suggestion_and_the_list(fake: Fake, run: Run) -> None:
    res = run(fake.root, "run", "v", "llama-quantise", "in.gguf")
    assert res.code == 2
    assert 'v has no program "llama-quantise" (did you mean "llama-quantize"?)' in res.err
    assert "it has: exit-with, kill-self, llama-quantize, say-forever, show-args, wait-for-input." in res.err
    res = run(fake.root, "run", "v", "README.txt")  # in bin/, but no program
    assert res.code == 2 and 'no program "README.txt"' in res.err
    res = run(fake.root, "run", "v")
    assert res.code == 2 and "which program?" in res.err


@pytest.mark.parametrize(
    "program", ["../v-0123456789ab-cafe0001/bin/show-args", "../x", "..", "bin/show-args"]
)
def test_a_path_is_refused(fake: Fake, run: Run, program: str) -> None:
    res = run(fake.root, "run", "v", program)
    assert res.code == 2
    assert (
        f'"{program}": PROGRAM is the file name of a program in {fake.folder / "bin"}, not a path' in res.err
    )


def test_a_variant_not_built_is_exit_2(fake: Fake, run: Run) -> None:
    res = run(fake.root, "run", "w", "show-args")
    assert res.code == 2
    assert "w is not built; run `variant build w` first" in res.err
    res = run(fake.root, "run", "../v", "show-args")
    assert res.code == 2 and 'invalid variant name "../v"' in res.err


def test_help_after_the_variant_is_ours(fake: Fake, run: Run) -> None:
    res = run(fake.root, "run", "v", "--help")
    assert res.code == 0 and res.out.startswith("Usage: variant run [OPTIONS] VARIANT [PROGRAM] [ARGS]...")
    assert "--list" in res.out  # after PROGRAM, --help is the program's: the first test passes it on
