"""Advisory file locks so that two builds of one variant (or two fetches of one
mirror) never interleave: the second waits, or gives up after a timeout."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import LockBusy


def _holder(fd: int) -> str:
    try:
        data = os.pread(fd, 64, 0).decode().strip()
    except OSError:
        return "?"
    return data or "?"


@contextlib.contextmanager
def hold(
    path: Path,
    what: str,
    *,
    timeout: float | None = None,
    say: Callable[[str], None] = print,
    shared: bool = False,
) -> Iterator[None]:
    """Hold a flock on path (exclusive, or shared with other readers); the kernel drops it if we die."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if timeout is not None and timeout <= 0:
                raise LockBusy(f"{what} is in use by another process (pid {holder})") from None
            say(f"waiting for {what} (held by pid {holder})...")
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise LockBusy(
                            f"{what} is still in use by another process (pid {holder}) after {timeout:g} s"
                        ) from None
                    time.sleep(0.2)
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def try_exclusive(path: Path) -> int | None:
    """An exclusive flock on path if nobody holds it (the fd to close when done), else None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
