"""What an ELF file says about how it was made: NEEDED, .comment, symbols, debug info.

Reads executables, shared libraries, objects and the members of `ar` archives
(the C runtime's startup files and libgcc are checked the same way).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import BuildError
from ..run import capture


@dataclass(frozen=True)
class ElfFacts:
    path: Path
    needed: tuple[str, ...]
    comments: tuple[str, ...]  # the strings of .comment: compilers' identifications
    undefined: frozenset[str]  # symbols it takes from elsewhere (calls into shared libraries)
    defined: frozenset[str]
    debug_info: bool

    def mentions(self, prefix: str) -> bool:
        """True if any symbol, defined or not, starts with prefix."""
        return any(s.startswith(prefix) for s in self.undefined | self.defined)


def _facts(path: Path, elf: ELFFile) -> ElfFacts:
    needed: list[str] = []
    undefined: set[str] = set()
    defined: set[str] = set()
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            tags = [t for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
            # pyelftools sets .needed on DT_NEEDED tags only; its stubs do not know it.
            needed += [t.needed for t in tags]  # type: ignore[attr-defined]
        elif isinstance(section, SymbolTableSection):
            for sym in section.iter_symbols():
                if not sym.name:
                    continue
                (undefined if sym["st_shndx"] == "SHN_UNDEF" else defined).add(sym.name)
    comment = elf.get_section_by_name(".comment")
    comments = tuple(c.decode(errors="replace") for c in comment.data().split(b"\0") if c) if comment else ()
    return ElfFacts(
        path,
        tuple(needed),
        tuple(dict.fromkeys(comments)),
        frozenset(undefined),
        frozenset(defined),
        elf.get_section_by_name(".debug_info") is not None,
    )


def read(path: Path) -> ElfFacts:
    try:
        with open(path, "rb") as fh:
            return _facts(path, ELFFile(fh))
    except (ELFError, OSError) as exc:
        raise BuildError(f"{path}: not a readable ELF file ({exc})") from exc


def _archive_members(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of each member of a System V / GNU `ar` archive."""
    if not data.startswith(b"!<arch>\n"):
        return []
    members = []
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode(errors="replace").strip()
        size = int(header[48:58].decode().strip() or 0)
        members.append((name, data[pos + 60 : pos + 60 + size]))
        pos += 60 + size + (size & 1)
    return members


def _each_object(path: Path) -> list[ElfFacts]:
    """The facts of an object or shared object, or of every object in an archive (unreadable: none)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    blobs = [b for _, b in _archive_members(data)] if data.startswith(b"!<arch>\n") else [data]
    found = []
    for blob in blobs:
        try:
            found.append(_facts(path, ELFFile(io.BytesIO(blob))))
        except ELFError:
            continue  # the archive's symbol and name tables
    return found


def comments_of(path: Path) -> set[str]:
    """The .comment strings of an object, a shared object, or every object in an archive."""
    return {c for f in _each_object(path) for c in f.comments}


# What a compiler driver links into every program besides the code it compiled.
RUNTIME_FILES = (
    "crt1.o", "Scrt1.o", "crti.o", "crtn.o", "crtbegin.o", "crtend.o", "crtbeginS.o", "crtendS.o",
    "libgcc.a", "libgcc_eh.a", "libc_nonshared.a",
)  # fmt: skip


@functools.cache
def runtime_comments(compiler: str) -> frozenset[str]:
    """The compiler identifications the C runtime's startup files carry (glibc's were built by gcc)."""
    found: set[str] = set()
    for name in RUNTIME_FILES:
        where = capture([compiler, f"-print-file-name={name}"], check=False).stdout.strip()
        if "/" in where:
            found |= comments_of(Path(where))
    return frozenset(found)


def defined_symbols(path: Path) -> set[str]:
    """The symbols an object, a shared object, or any object of an archive defines."""
    return {sym for f in _each_object(path) for sym in f.defined}


@functools.cache
def sanitizer_runtime_prefixes(
    compiler: str, libraries: tuple[str, ...], prefixes: tuple[str, ...]
) -> frozenset[str]:
    """Which of prefixes the compiler's runtime library for a sanitizer defines symbols with.

    compiler-rt's ThreadSanitizer and AddressSanitizer runtimes carry the
    UndefinedBehaviorSanitizer handlers (__ubsan_*), so a clang TSan binary
    defines them without any -fsanitize=undefined. Only a static runtime is
    copied into the binary: gcc's shared libtsan brings nothing along, and a
    symbol of another sanitizer in a gcc binary is a call from instrumented code.
    """
    for name in libraries:
        where = capture([compiler, f"-print-file-name={name}"], check=False).stdout.strip()
        if "/" in where and Path(where).is_file():
            if not where.endswith(".a"):
                return frozenset()
            symbols = defined_symbols(Path(where))
            return frozenset(p for p in prefixes if any(s.startswith(p) for s in symbols))
    return frozenset()


def debug_units(path: Path) -> list[tuple[str, str]]:
    """(DW_AT_name, DW_AT_comp_dir) of every DWARF compile unit: which sources carry debug info."""
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            if not elf.has_dwarf_info():
                return []
            units = []
            for cu in elf.get_dwarf_info().iter_CUs():
                attrs = cu.get_top_DIE().attributes

                def text(key: str, attrs: Any = attrs) -> str:
                    value = attrs[key].value if key in attrs else b""
                    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

                units.append((text("DW_AT_name"), text("DW_AT_comp_dir")))
            return units
    except (ELFError, OSError) as exc:
        raise BuildError(f"{path}: unreadable debug info ({exc})") from exc
