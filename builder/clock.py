"""The one timestamp format of manifests and results."""

from __future__ import annotations

import datetime
import time


def now_iso(precise: bool = False) -> str:
    """Local time with its offset; precise adds microseconds (run starts order runs from many machines)."""
    if precise:
        return datetime.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
