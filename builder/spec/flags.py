"""Compiler and linker flags of a variant ([flags] c, cxx, ld)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Flags:
    c: tuple[str, ...] = ()
    cxx: tuple[str, ...] = ()
    ld: tuple[str, ...] = ()

    def __add__(self, other: Flags) -> Flags:
        return Flags(self.c + other.c, self.cxx + other.cxx, self.ld + other.ld)


# Macros that llama.cpp's and ggml's CMake define from options (GGML_USE_OPENMP from
# GGML_OPENMP, ...). Setting them by hand fights the option: `-DGGML_USE_OPENMP=0`
# *defines* the macro an #ifdef tests, and `-U` leaves the option's link flags behind.
OWNED_MACRO = re.compile(r"(GGML|LLAMA)_\w+")
# The name the preprocessor takes from a -D/-U argument: leading whitespace skipped, then an
# identifier, which ends at the first other character. gcc defines GGML_X for each of
# "-D GGML_X", "-DGGML_X(x)=1" and "-DGGML_X\n"; a deny-list must see GGML_X in all three
# (matched whole, so neither a trailing newline nor a longer name such as MY_GGML_X decides it).
_NAME = re.compile(r"\s*([A-Za-z_]\w*)")


def _macro(flag: str, following: str | None) -> tuple[str, str] | None:
    """("-D" or "-U", macro name) if flag defines or undefines a macro, else None.

    Also the preprocessor's own spelling, -Wp,-DNAME or -Wp,-U,NAME.
    """
    if flag.startswith("-Wp,"):
        parts = flag.split(",")[1:]
        for i, part in enumerate(parts):
            if found := _macro(part, parts[i + 1] if i + 1 < len(parts) else None):
                return found
        return None
    for prefix in ("-D", "-U"):
        if flag == prefix and following is not None:
            return prefix, _name(following)
        if flag.startswith(prefix) and len(flag) > 2:
            return prefix, _name(flag[2:])
    return None


def _name(argument: str) -> str:
    """The macro a -D/-U argument names, as the preprocessor reads it ("" if none)."""
    found = _NAME.match(argument)
    return found[1] if found else ""


def owned_macro_error(flags: tuple[str, ...]) -> tuple[int, str] | None:
    """(index, message) for the first -D/-U of a GGML_*/LLAMA_* macro in flags, else None."""
    for i, flag in enumerate(flags):
        found = _macro(flag, flags[i + 1] if i + 1 < len(flags) else None)
        if found is None or not OWNED_MACRO.fullmatch(found[1]):
            continue
        prefix, macro = found
        option = macro.replace("_USE_", "_", 1)
        verb = "defines" if prefix == "-D" else "undefines"
        return i, (
            f'"{flag}" {verb} {macro}, which the CMake option {option} controls (any definition, even '
            f"=0, satisfies an #ifdef, and the option's link flags stay): set [cmake] {option} instead"
        )
    return None
