"""The one subprocess wrapper: argv lists only, every command logged, failures explained.

`capture()` is for short commands whose output we parse; `live()` is for long
ones (CMake, Ninja) whose merged output is streamed line by line to a log file
and a callback (progress). Nothing here ever goes through a shell, so spec
values with metacharacters reach the child literally.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandError, UserError

log = logging.getLogger("variant")

Arg = str | os.PathLike[str]
TAIL_LINES = 30


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def _argv(args: Sequence[Arg]) -> list[str]:
    if isinstance(args, str | bytes):
        raise TypeError("run() takes an argv list, never a command string")
    return [os.fspath(a) for a in args]


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def capture(
    args: Sequence[Arg],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = None,
) -> Result:
    """Run a short command and return its output; raise CommandError on failure if check."""
    argv = _argv(args)
    log.debug("$ %s%s", shlex.join(argv), f"   (in {cwd})" if cwd else "")
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=_env(env),
            input=input,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise UserError(
            f"{argv[0]}: command not found (run `variant doctor` to see what is missing)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, _tail(proc.stderr or proc.stdout))
    return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # If `variant` is killed (even with SIGKILL) its build children must not
    # go on writing into the build tree unattended.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def live(
    args: Sequence[Arg],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run a long command, appending its merged output to log_file line by line.

    On failure raise CommandError whose tail holds the last lines of output.
    Ctrl-C terminates the child before re-raising.
    """
    argv = _argv(args)
    log.debug("$ %s%s", shlex.join(argv), f"   (in {cwd})" if cwd else "")
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"$ {shlex.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            raise UserError(
                f"{argv[0]}: command not found (run `variant doctor` to see what is missing)"
            ) from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip("\n"))
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        out.write(f"[exit {rc}]\n")
    if rc != 0:
        raise CommandError(argv, rc, "\n".join(tail), log=log_file)
