"""Processes that run beside the one under test, through the one wrapper's rules (run.py).

A CPU hog for a competing-load profile lives as long as a with-block. A
tracer (biolatency, offcputime, bpftrace) must be attached before the program
starts and must print what it gathered when it stops: it is started, waited
for until its output says it is attached, and stopped with SIGINT, the
Ctrl-C its summary is printed on.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import UserError
from .run import Arg, _argv, _die_with_parent, _shown, _tail, log


@contextlib.contextmanager
def background(args: Sequence[Arg]) -> Iterator[None]:
    """A helper process (a CPU hog, say) that lives exactly as long as the with-block."""
    argv = _argv(args)
    log.debug("$ %s &", _shown(argv))
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent
    )
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def tracing(args: Sequence[Arg], out: Path, ready: str | None, *, settle: float = 1.0,
            wait: float = 30.0, grace: float = 30.0) -> Iterator[None]:  # fmt: skip
    """A tracer writing stdout to out (stderr beside it, .err), attached before the block and stopped
    (SIGINT) after it.

    ready: text its stdout prints once attached (None: wait `settle` seconds). A tracer that exits
    before it is ready is a UserError with its stderr's tail; one that ignores SIGINT is killed
    after `grace` seconds (its output is then what it printed so far). stderr is kept apart: a
    tool's warnings, unbuffered, would land in the middle of its buffered output's lines.
    """
    argv = _argv(args)
    err = out.with_suffix(".err")
    log.debug("$ %s > %s 2> %s &", _shown(argv), out, err)
    with out.open("wb") as sink, err.open("wb") as errors:
        try:
            proc = subprocess.Popen(argv, stdout=sink, stderr=errors, preexec_fn=_die_with_parent)
        except FileNotFoundError as exc:
            raise UserError(f"{argv[0]}: not found") from exc
    try:
        deadline = time.monotonic() + (wait if ready else settle)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = err.read_text(errors="replace") + out.read_text(errors="replace")
                raise UserError(f"{argv[0]} stopped before it was attached (exit {proc.returncode}):\n"
                                + _tail(text))  # fmt: skip
            if ready and ready in out.read_text(errors="replace"):
                break
            time.sleep(0.05)
        else:
            if ready:
                text = out.read_text(errors="replace")
                raise UserError(f"{argv[0]} printed no {ready!r} within {wait:g} s:\n" + _tail(text))
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
