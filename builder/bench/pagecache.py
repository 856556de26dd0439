"""The page cache around a cold load: empty it for a model's files, or all of it, and see what stays."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

from ..errors import UserError
from .case import Context, Target


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache; no root needed (posix_fadvise DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_fraction(path: Path) -> float:
    """The share of a file's pages in the page cache, from mincore(2) over a mapping of it."""
    size = path.stat().st_size
    if size == 0:
        return 0.0
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            vec = ctypes.create_string_buffer(pages)
            if libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            return sum(b & 1 for b in vec.raw) / pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def evict_all(ctx: Context, target: Target) -> None:
    """A cold cache for every file of the model (a split model's parts too).

    posix_fadvise(DONTNEED) per file needs no privileges; --drop-caches (root) empties the
    whole page cache instead, what a person does by hand before a cold measurement.
    """
    if ctx.drop_caches:
        os.sync()
        DROP_CACHES.write_text("3\n")
        return
    for part in target.files:
        evict(part)


def check_drop_caches(ctx: Context) -> None:
    if ctx.drop_caches and not os.access(DROP_CACHES, os.W_OK):
        raise UserError(f"--drop-caches: {DROP_CACHES} is not writable here (it needs root)")
