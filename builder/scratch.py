"""Where the programs under test run, and paths every fork's programs can take.

Two things the tool's callers should never see from a program it runs:

- Files it writes in its working directory. ik_llama.cpp's programs write
  `llama.log` and `main.log` there; run from a checkout they ended up committed.
  Programs run in this process's scratch folder, removed at exit (one left by
  a killed run is removed by the next run that makes its own).
- A path it cannot take. Some forks' programs split a path at spaces or commas
  (BitNet's `llama-bench -m` tries to open '/tmp/new' for '/tmp/new user/...'),
  so a model in a project whose path has a space, a comma or a non-ASCII letter
  is passed as a link in the scratch folder, whose own path is plain.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .errors import UserError
from .lock import try_exclusive

PREFIX = "variant-run-"
# What every fork's argument parsers pass through unchanged: no space, comma, quote,
# glob or non-ASCII letter (a comma separates values in llama-bench's lists).
PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")

ALIVE = ".alive"  # locked (flock) by the folder's run for as long as it lives

_folder: Path | None = None
_lock_fd: int | None = None  # kept open: closing it would drop the lock


def plain(text: str) -> bool:
    return PLAIN.fullmatch(text) is not None


def _root() -> Path:
    """The system's temporary folder, or /tmp when TMPDIR itself is not a plain path."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if plain(candidate) and os.access(candidate, os.W_OK):
            return Path(candidate)
    raise UserError(
        f"no temporary folder with a plain path (TMPDIR={tempfile.gettempdir()!r}): programs of some "
        "forks cannot take a path with spaces or commas; set TMPDIR to a folder without them"
    )


def _clean_stale(root: Path) -> None:
    """Scratch folders of runs that were killed: nobody holds the lock inside them.

    A lock, not the pid in the name: a pid says nothing across pid namespaces (two containers
    sharing /tmp), while the kernel drops a dead process's flock wherever it ran.
    """
    for leftover in root.glob(f"{PREFIX}*"):
        if leftover == _folder or not leftover.is_dir() or leftover.is_symlink():
            continue
        alive = leftover / ALIVE
        if not alive.exists():
            # made by a run that died before locking it, or one that is locking it right now
            if time.time() - leftover.stat().st_mtime > 60:
                shutil.rmtree(leftover, ignore_errors=True)
            continue
        fd = try_exclusive(alive)
        if fd is not None:
            os.close(fd)
            shutil.rmtree(leftover, ignore_errors=True)


def folder() -> Path:
    """This process's scratch folder (made on first use, locked while we live, removed at exit)."""
    global _folder, _lock_fd
    if _folder is None or not _folder.is_dir():
        root = _root()
        with contextlib.suppress(OSError):
            _clean_stale(root)
        made = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        _lock_fd = try_exclusive(made / ALIVE)
        _folder = made
        atexit.register(shutil.rmtree, made, True)
    return _folder


# A split GGUF (llama-gguf-split): the program opens the first part and finds the others by its name,
# PREFIX-%05d-of-%05d.gguf, counting from 1. The suffix is the part after the prefix.
SPLIT_PART = re.compile(r"^(?P<prefix>.+)(?P<suffix>-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf)$")


def _tag(path: Path) -> str:
    """The same path always gets the same link: its name starts with (or sits under) this."""
    return hashlib.sha256(os.fsencode(path)).hexdigest()[:12]


def _plain_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def takeable(path: Path) -> Path:
    """path itself when it is plain; otherwise a link to it in the scratch folder.

    A part of a split model gets its siblings linked beside it under the same prefix,
    so the program that opens the link finds the other parts as it would the originals.
    """
    if plain(str(path)):
        return path
    split = SPLIT_PART.match(path.name)
    # The same file always gets the same link; the name keeps its suffix (.gguf) for tools that look.
    key = path.with_name(split["prefix"]) if split else path
    tag = _tag(key)
    stem = _plain_name(key.name)[-60:]
    links = folder() / "links"
    links.mkdir(exist_ok=True)
    found = [m for q in path.parent.glob("*.gguf") if (m := SPLIT_PART.match(q.name))]
    parts = {m[0]: m["suffix"] for m in found if split and m["prefix"] == split["prefix"]} or {path.name: ""}
    for name, suffix in parts.items():
        link = links / f"{tag}-{stem}{suffix}"
        if not link.is_symlink():
            link.symlink_to((path.parent / name).resolve())
    return links / f"{tag}-{stem}{split['suffix'] if split else ''}"


def program_link(path: Path) -> Path:
    """A link to a program, under its own name in a folder of its own.

    The name matters: the kernel names the process after it (comm), and what
    counts a program's threads by name (offcputime's stacks, ps, perf's comm) must
    see llama-completion, not a link's hashed name.
    """
    link = folder() / "links" / _tag(path) / _plain_name(path.name)
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    return link


def argv(args: list[str]) -> list[str]:
    """args with every existing file or folder that is not a plain path replaced by takeable().

    The program (args[0]) is left as it is: exec takes any path, and a program finds its
    libraries through its real location. A program a wrapper runs (taskset, sh, perf: an
    executable file further on) gets a link under its own name (program_link).
    """
    out = args[:1]
    for a in args[1:]:
        p = Path(a)
        if plain(a) or not p.is_absolute() or not p.exists():
            out.append(a)
        elif p.is_file() and os.access(p, os.X_OK) and p.suffix != ".gguf":
            out.append(str(program_link(p)))
        else:
            out.append(str(takeable(p)))
    return out
