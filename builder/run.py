"""The one subprocess wrapper: argv lists only, every command logged, failures explained.

`capture()` is for short commands whose output we parse; `live()` is for long
ones (CMake, Ninja) whose merged output is streamed line by line to a log file
and a callback (progress). Nothing here ever goes through a shell, so spec
values with metacharacters reach the child literally. A command as logged, and
as a CommandError shows it, has any URL's password hidden (redact.py); so has every line
of output live() writes to its log and passes on, and every tail an error shows: a child
may print a secret it was given some other way (ccache prints a URL it cannot parse).
CommandError redacts its command line and tail itself (errors.py).
"""

from __future__ import annotations

import collections
import contextlib
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

from . import redact, scratch
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


def _env(env: Mapping[str, str] | None, inherit: bool = True) -> dict[str, str] | None:
    """The child's environment: ours plus env, or (inherit=False) exactly env."""
    if not inherit:
        return dict(env or {})
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


def _shown(argv: list[str]) -> str:
    """A command line as logged and as errors show it: any URL's password hidden (redact.py)."""
    return shlex.join(redact.argv(argv))


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
    log.debug("$ %s%s", _shown(argv), f"   (in {cwd})" if cwd else "")
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
    inherit_env: bool = True,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run a long command, appending its merged output to log_file line by line.

    On failure raise CommandError whose tail holds the last lines of output.
    Ctrl-C terminates the child before re-raising. With inherit_env=False the
    child gets env and nothing else (builds: see host/env.py).
    """
    argv = _argv(args)
    log.debug("$ %s%s", _shown(argv), f"   (in {cwd})" if cwd else "")
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"$ {_shown(argv)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=_env(env, inherit_env),
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
            for raw in proc.stdout:
                line = redact.text(raw.rstrip("\n"))
                out.write(line + "\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
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


@dataclass(frozen=True)
class Measured:
    """A benchmarked child: its output and what the kernel counted for it."""

    argv: tuple[str, ...]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    wall_s: float
    user_s: float
    sys_s: float
    minflt: int
    majflt: int
    maxrss_kib: int
    anon_huge_kib: int  # peak AnonHugePages seen in /proc/PID/smaps_rollup (0 unless asked for)

    def tail(self, lines: int = 15) -> str:
        return _tail(self.stdout + "\n" + self.stderr, lines)


def _anon_huge_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def measure(
    args: Sequence[Arg],
    *,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    timeout: float | None = None,
    sample_every: float = 0.05,
    huge_pages: bool = False,
) -> Measured:
    """Run a program under test and collect its rusage (os.wait4) and, asked for, huge-page use.

    Reading /proc/PID/smaps_rollup walks the program's page tables under its mmap lock: 3.2 ms
    per read for a 395 MiB model (measured), so sampling it every 50 ms took 6% of a CPU from
    the program and cost tg 8-12% on 2 CPUs. It is read only when huge_pages is asked for (the
    faults suite), after 0.2 s and then once a second.

    Output goes to temporary files rather than pipes, so a chatty child never
    blocks on a full pipe while we poll it. It runs in the scratch folder, with
    paths it can take (scratch.py); the Measured's argv is the caller's. With
    inherit_env=False it gets env and nothing else (benchmarks: bench/environment.py).
    """
    import tempfile
    import time

    argv = _argv(args)
    log.debug("$ %s", _shown(argv))
    ran = scratch.argv(argv)
    # Models with random weights print arbitrary bytes: decode leniently.
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
    ):
        t0 = time.monotonic()
        try:
            # Its own process group: a wrapper in front of the program (perf record, uftrace record)
            # forks it, and a timeout must kill the program too, not only the wrapper.
            proc = subprocess.Popen(
                ran,
                cwd=scratch.folder(),
                env=_env(env, inherit_env),
                stdout=out,
                stderr=err,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise UserError(f"{argv[0]}: not found") from exc
        peak_huge = 0
        next_huge = 0.2 if huge_pages else float("inf")
        status: int | None = None
        try:
            while True:
                pid, wstatus, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    status = os.waitstatus_to_exitcode(wstatus)
                    break
                if time.monotonic() - t0 >= next_huge:
                    peak_huge = max(peak_huge, _anon_huge_kib(proc.pid))
                    next_huge += 1.0
                if timeout is not None and time.monotonic() - t0 > timeout:
                    _kill_group(proc.pid)
                    _, wstatus, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(sample_every)
        except BaseException:
            _kill_group(proc.pid)
            os.wait4(proc.pid, 0)
            raise
        finally:
            proc.returncode = status if status is not None else -9  # Popen must not wait again
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=tuple(argv),
            returncode=status,
            stdout=out.read(),
            stderr=err.read(),
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            minflt=usage.ru_minflt,
            majflt=usage.ru_majflt,
            maxrss_kib=usage.ru_maxrss,
            anon_huge_kib=peak_huge,
        )
