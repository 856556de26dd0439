"""Where two builds of one file part: the first ELF section whose bytes differ."""

from __future__ import annotations

from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

# A digest of the rest of the file: it differs whenever anything does, so it names nothing.
SKIPPED = (".note.gnu.build-id",)


def _first_byte(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _sections(a: Path, b: Path) -> list[str]:
    """Each section that differs, in a's file order, said for a person."""
    found = []
    with open(a, "rb") as fa, open(b, "rb") as fb:
        theirs = {s.name: s for s in ELFFile(fb).iter_sections()}
        for section in sorted(ELFFile(fa).iter_sections(), key=lambda s: s["sh_offset"]):
            other = theirs.pop(section.name, None)
            if other is None:
                found.append(f"section {section.name} (only in {a.name} as published)")
            elif section.name not in SKIPPED and section["sh_type"] != "SHT_NOBITS":
                sa, sb = section.data(), other.data()
                if sa != sb:
                    size = f"{len(sa)} vs {len(sb)} bytes" if len(sa) != len(sb) else f"{len(sa)} bytes"
                    found.append(f"section {section.name}, from byte {_first_byte(sa, sb)} of it ({size})")
        found += [f"section {name} (only in the rebuild)" for name in sorted(theirs)]
    return found


def first_difference(a: Path, b: Path) -> str:
    """What differs first between a and b: an ELF section (and how many more), else a byte offset."""
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return "identical"
    try:
        found = _sections(a, b)
    except ELFError:
        return f"byte {_first_byte(da, db)} ({len(da)} vs {len(db)} bytes; not an ELF file)"
    if not found:
        return f"the ELF headers or layout (byte {_first_byte(da, db)}; every section's bytes agree)"
    more = found[1:]
    names = ", ".join(f.split(",")[0].split(" (")[0].removeprefix("section ") for f in more)
    return found[0] + (f"; {len(more)} more: {names}" if more else "")
