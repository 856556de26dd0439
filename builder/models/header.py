"""A GGUF file's header and tensor infos, read without touching the weights.

gguf-py's GGUFReader maps the whole file and refuses tensor types it does not
know (every fork adds its own: T-MAC's i4, BitNet's tl2, ik's iq4_k), so this
is a small reader of its own: it reads the header region only (megabytes even
for a 400 GB model: the tokenizer's arrays are its bulk), keeps every type id
as a number, and treats the file as hostile input: every count and length is
bounded by the bytes actually there, one string by 16 MiB and one array by
256 MiB (a 400k-token vocabulary is about 10 MB), and a short or damaged file
is a UserError naming it, never a traceback or a huge allocation: nothing
larger than one string is read at once (the digest is taken as it reads).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import UserError
from .types import nbytes

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
# The header region is read in chunks; a header larger than this is not a model anyone has.
MAX_HEADER = 1 << 30
# One key's value: a chat template is kilobytes, a vocabulary's arrays megabytes.
MAX_STRING = 16 << 20
MAX_ARRAY = 256 << 20
CHUNK = 1 << 20  # how a long array of numbers is read: into the digest, not kept
SHORT = 64  # an array of up to this many values is kept (a split count, rope sections); longer: summarised
FIXED = 24  # magic, version, tensor count, key count

# GGUF value types: struct format of the scalars; 8 string, 9 array.
SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"
}  # fmt: skip
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class Tensor:
    name: str
    type_id: int  # a ggml_type of whichever code base wrote the file
    shape: tuple[int, ...]
    offset: int  # from the start of the data section

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Header:
    path: Path
    version: int
    kv: dict[str, Any]  # scalars and strings as values; arrays as ("array", type, length) or short lists
    tensors: tuple[Tensor, ...]
    data_offset: int  # where the tensor data starts (aligned)
    file_size: int
    digest: str  # sha256 of the header region's bytes: what the file is, whatever its name

    def stored_bytes(self) -> dict[str, int]:
        """Each tensor's bytes in the file: the distance to the next tensor's data (or the file's end).

        Alignment padding is counted with the tensor before it: a few bytes against megabytes.
        """
        order = sorted(self.tensors, key=lambda t: t.offset)
        end = self.file_size - self.data_offset
        out = {}
        for t, nxt in zip(order, [*order[1:], None], strict=True):
            out[t.name] = (nxt.offset if nxt else end) - t.offset
        return out


class _Reader:
    """Little-endian reads from a file's start, bounded by the file's size, hashed as they are read."""

    def __init__(self, f: BinaryIO, path: Path, size: int) -> None:
        self.f, self.path, self.size, self.pos = f, path, size, 0
        self.digest = hashlib.sha256()

    def _bound(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > min(self.size, MAX_HEADER):
            raise UserError(
                f"{self.path}: not a complete GGUF file: {what} at byte {self.pos} runs past "
                f"{'its end' if self.pos + n > self.size else 'any sane header size'} ({self.size} bytes)"
            )

    def take(self, n: int, what: str) -> bytes:
        self._bound(n, what)
        data = self.f.read(n)
        if len(data) != n:
            raise UserError(f"{self.path}: the file ended while reading {what} (byte {self.pos})")
        self.pos += n
        self.digest.update(data)
        return data

    def skip(self, n: int, what: str) -> None:
        """n bytes into the digest, a chunk at a time."""
        self._bound(n, what)
        while n:
            n -= len(self.take(min(n, CHUNK), what))

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q", what)
        if n > MAX_STRING:
            self._bound(n, what)  # a length past the file's end is damage, and said so
            past = f"no model has one past {MAX_STRING >> 20} MiB"
            raise UserError(f"{self.path}: {what}: a string of {n} bytes ({past})")
        raw = self.take(n, what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise UserError(f"{self.path}: {what} is not UTF-8 text (byte {self.pos - n})") from None

    def _too_big(self, what: str, n: int) -> UserError:
        return UserError(
            f"{self.path}: {what}: an array of {n} values past {MAX_ARRAY >> 20} MiB "
            "(no model has one: a 400k-token vocabulary is about 10 MB)"
        )

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in SCALARS:
            return self.scalar(SCALARS[vtype], what)
        if vtype == STRING:
            return self.string(what)
        if vtype == ARRAY and depth == 0:
            etype = self.scalar("<I", what)
            n = self.scalar("<Q", what)
            if n > self.size - self.pos:  # every element takes at least one byte
                raise UserError(f"{self.path}: {what}: an array of {n} elements cannot fit in the file")
            if etype in SCALARS:
                width = struct.calcsize(SCALARS[etype])
                if n * width > MAX_ARRAY:
                    self._bound(n * width, what)
                    raise self._too_big(what, n)
                if n > SHORT:  # the vocabulary's scores and types: counted, not kept
                    self.skip(n * width, what)
                    return ("array", etype, n)
                return list(struct.unpack(f"<{n}{SCALARS[etype][1]}", self.take(n * width, what)))
            start, items = self.pos, []
            for _ in range(n):
                item = self.value(etype, what, depth + 1)
                if self.pos - start > MAX_ARRAY:
                    raise self._too_big(what, n)
                if n <= SHORT:
                    items.append(item)
            return items if n <= SHORT else ("array", etype, n)
        raise UserError(f"{self.path}: {what}: unknown GGUF value type {vtype} (at byte {self.pos})")


def read(path: Path) -> Header:
    """The header of one GGUF file (one part of a split model)."""
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except OSError as e:
        raise UserError(f"{path}: cannot read the model ({e.strerror or e})") from None
    with f:
        r = _Reader(f, path, size)
        if f.read(len(MAGIC)) != MAGIC:
            raise UserError(f"{path}: not a GGUF model (it does not start with the GGUF magic)")
        if size < FIXED:
            raise UserError(f"{path}: truncated GGUF: {size} bytes, short of its {FIXED}-byte fixed header")
        f.seek(0)
        r.take(4, "the magic")
        version = r.scalar("<I", "the version")
        if version not in VERSIONS:
            known = ", ".join(map(str, VERSIONS))
            raise UserError(f"{path}: GGUF version {version}; this reader knows {known}")
        n_tensors = r.scalar("<Q", "the tensor count")
        n_kv = r.scalar("<Q", "the key count")
        # a key takes at least 12 bytes, a tensor info at least 24: counts beyond that are damage
        if n_kv * 12 + n_tensors * 24 > size:
            raise UserError(f"{path}: {n_kv} keys and {n_tensors} tensors cannot fit in {size} bytes")
        kv: dict[str, Any] = {}
        for i in range(n_kv):
            key = r.string(f"key {i}")
            kv[key] = r.value(r.scalar("<I", f"the type of {key}"), key)
        tensors = []
        for i in range(n_tensors):
            name = r.string(f"tensor {i}'s name")
            n_dims = r.scalar("<I", f"{name}'s dimension count")
            if not 1 <= n_dims <= MAX_DIMS:
                raise UserError(f"{path}: tensor {name} has {n_dims} dimensions (expected 1 to {MAX_DIMS})")
            shape = tuple(r.scalar("<Q", f"{name}'s shape") for _ in range(n_dims))
            type_id = r.scalar("<I", f"{name}'s type")
            tensors.append(Tensor(name, type_id, shape, r.scalar("<Q", f"{name}'s offset")))
        align = kv.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise UserError(f"{path}: general.alignment is {align!r} (expected a power of two)")
        data_offset = -(-r.pos // align) * align
        digest = r.digest.hexdigest()
    header = Header(path, version, kv, tuple(tensors), data_offset, size, digest)
    _check_extent(header)
    return header


def _check_extent(h: Header) -> None:
    """Every tensor's data starts inside the file, and those of known size end inside it: a cut file fails."""
    data = h.file_size - h.data_offset
    for t in h.tensors:
        need = nbytes(t.type_id, t.elements)
        end = t.offset + (need if need is not None else 1)
        if end > data:
            raise UserError(
                f"{h.path}: truncated GGUF: tensor {t.name} needs bytes up to {h.data_offset + end}, "
                f"the file has {h.file_size}"
            )
