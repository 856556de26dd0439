"""Temporary folders whose leftovers (a run killed with SIGKILL) the next run removes.

A folder of one kind is made in its parent as `.<kind>-<random>` while the
parent's `.<kind>.lock` is held, and removed when the block ends. Whoever holds
that lock is the only one using a `.<kind>-*` folder there, so every other
folder of the kind found under the lock was left by a run that died: it is
removed before the new one is made. The lock lives beside the folders (not
under the state folder) because the parent may be shared: a downloads folder
or a mirror folder used by several catalogues.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .lock import hold

# tempfile.mkdtemp's random part: eight characters of this alphabet
_RANDOM = "[a-z0-9_]{8}"


def _name(kind: str) -> re.Pattern[str]:
    """The names of the kind's folders, matched whole (fullmatch): `$` would pass a trailing newline."""
    return re.compile(rf"\.{re.escape(kind)}-{_RANDOM}")


def leftovers(parent: Path, kind: str) -> list[Path]:
    """The folders of this kind in parent (stale only when called under the kind's lock)."""
    if not parent.is_dir():
        return []
    pattern = _name(kind)
    return sorted(
        p for p in parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    )


@contextlib.contextmanager
def folder(parent: Path, kind: str, say: Callable[[str], None]) -> Iterator[Path]:
    """A fresh empty folder parent/.<kind>-<random>, removed afterwards; a killed run's ones cleaned first."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"scratch kind {kind!r}: lowercase letters only (its folders are found by name)")
    parent.mkdir(parents=True, exist_ok=True)
    with hold(parent / f".{kind}.lock", f"the {kind} folder in {parent}", say=say):
        for stale in leftovers(parent, kind):
            say(f"removing {stale} (left by a run that was killed)")
            shutil.rmtree(stale, ignore_errors=True)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=f".{kind}-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
