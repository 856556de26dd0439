"""Progress for long steps: a bar on a terminal, a few plain lines in logs and CI."""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, *, every_percent: int = 10) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every_percent
        self.last_bucket = -1
        self.last_time = 0.0
        self.shown = False

    def update(self, done: int, total: int, what: str = "") -> None:
        if total <= 0:
            return
        pct = 100 * done // total
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            bar_w = 24
            filled = bar_w * done // total
            line = f"{self.label} [{'#' * filled}{'.' * (bar_w - filled)}] {done}/{total} {what}"
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            self.stream.flush()
            self.shown = True
            return
        bucket = pct // self.every
        now = time.monotonic()
        if bucket != self.last_bucket or now - self.last_time > 30 or done == total:
            self.last_bucket, self.last_time = bucket, now
            self.stream.write(f"{self.label}: {done}/{total} ({pct}%)\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


@contextlib.contextmanager
def ticking(say: Callable[[str], None], label: str, every: float = 30.0) -> Iterator[None]:
    """A line every `every` seconds while the block runs: a case on a big model takes minutes, silently."""
    stop = threading.Event()
    t0 = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            say(f"  ... {label}: {time.monotonic() - t0:.0f} s")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
