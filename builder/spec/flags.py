"""Compiler and linker flags of a variant ([flags] c, cxx, ld)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flags:
    c: tuple[str, ...] = ()
    cxx: tuple[str, ...] = ()
    ld: tuple[str, ...] = ()

    def __add__(self, other: Flags) -> Flags:
        return Flags(self.c + other.c, self.cxx + other.cxx, self.ld + other.ld)
