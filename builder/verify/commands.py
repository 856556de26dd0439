"""Checks on what CMake was told and what it ran: the CMake cache and the exact compile commands."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from ..plan.plan import Plan
from ..tomlfile import cmake_name
from .verify import Check

CACHE_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_.+-]*):(?P<type>[A-Z]+)=(?P<value>.*)$")
C_SUFFIXES = (".c",)
DEBUG_FLAG = re.compile(r"^-g(gdb)?[1-3]?$")


def cache(build_dir: Path) -> dict[str, str]:
    path = build_dir / "CMakeCache.txt"
    out = {}
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else ():
        m = CACHE_LINE.match(line)
        if m:
            out[m["key"]] = m["value"]
    return out


def _entries(build_dir: Path) -> list[tuple[str, list[str]]]:
    db = build_dir / "compile_commands.json"
    if not db.is_file():
        return []
    return [
        (e["file"], e["arguments"] if "arguments" in e else shlex.split(e.get("command", "")))
        for e in json.loads(db.read_text())
    ]


def config_flags(plan: Plan, values: dict[str, str], *, mapped: bool = True) -> dict[str, list[str]]:
    """The flags every C and C++ compile must carry: the build type's (from the cache), the spec's
    and the prefix maps that keep the build's paths out of its bytes."""
    cfg = plan.variant.build_type.upper()
    maps = list(plan.path_flags()) if mapped else []  # a wheel's build gets no prefix maps
    return {
        "c": values.get(f"CMAKE_C_FLAGS_{cfg}", "").split() + list(plan.flags.c) + maps,
        "cxx": values.get(f"CMAKE_CXX_FLAGS_{cfg}", "").split() + list(plan.flags.cxx) + maps,
    }


def wants_debug_info(flags: dict[str, list[str]]) -> bool:
    """-g (in any form) and no later -g0 in the C flags."""
    last = [f for f in flags["c"] if DEBUG_FLAG.match(f) or f == "-g0"]
    return bool(last) and last[-1] != "-g0"


def options(plan: Plan, values: dict[str, str]) -> Check:
    """CMake's cache holds every -D option exactly as the plan gave it."""
    # NAME:TYPE keys (tomlfile.CMAKE_NAME) are NAME in the cache
    got = {k: values.get(cmake_name(k)) for k, _ in plan.options}
    wrong = [f"{k}={got[k] or '(unset)'} (expected {v})" for k, v in plan.options if got[k] != v]
    if wrong:
        return Check("cmake", False, "the CMake cache disagrees: " + ", ".join(wrong))
    return Check("cmake", True, f"{len(plan.options)} options in CMakeCache.txt as specified")


def compile_commands(plan: Plan, flags: dict[str, list[str]]) -> Check:
    """Every compile ran the toolchain's compiler with the build type's and the spec's flags."""
    entries = _entries(plan.build_dir)
    if not entries:
        return Check("compile", False, f"{plan.build_dir / 'compile_commands.json'} missing or empty")
    compilers = {plan.toolchain.cc.path, plan.toolchain.cxx.path}
    debug = wants_debug_info(flags)
    bad = []
    for file, argv in entries:
        lang = "c" if file.endswith(C_SUFFIXES) else "cxx"
        if not compilers & set(argv):
            bad.append(f"{file} compiled by {next((a for a in argv if '/' in a), argv[:1])}")
        elif missing := [f for f in flags[lang] if f not in argv]:
            bad.append(f"{file} compiled without {missing}")
        elif not debug and (extra := [a for a in argv if DEBUG_FLAG.match(a)]):
            bad.append(f"{file} compiled with {extra} in a {plan.variant.build_type} build")
    if bad:
        return Check("compile", False, f"{len(bad)} of {len(entries)} compile commands differ, e.g. {bad[0]}")
    wanted = " ".join(dict.fromkeys(flags["c"] + flags["cxx"])) or "no flags"
    return Check("compile", True, f"{plan.toolchain.spec.name} with {wanted} on all {len(entries)} files")
