"""Check that every axis of a spec took effect in the artifacts, not just in the command line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .. import git
from ..errors import BuildError
from ..patch import apply as patches
from ..spec.instrument import INSTRUMENTS
from .plan import Plan

OPENMP_LIB = re.compile(r"^lib(g|i)?omp\b")
# gcc and clang: "path/to/file.c:617:24: warning: ..." (ccache replays them on a hit)
WARNING = re.compile(r"^(?P<file>[^\s:]+):\d+:(?:\d+:)? warning: (?P<text>.*)$", re.M)
PROFILE_HOOK = "__cyg_profile_func_enter"


@dataclass(frozen=True)
class ElfFacts:
    path: Path
    needed: tuple[str, ...]
    comments: tuple[str, ...]
    references_profile_hook: bool


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def read_elf(path: Path) -> ElfFacts:
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            needed: list[str] = []
            hook = False
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    tags = [t for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
                    # pyelftools sets .needed on DT_NEEDED tags only; its stubs do not know it.
                    needed += [t.needed for t in tags]  # type: ignore[attr-defined]
            comment = elf.get_section_by_name(".comment")
            comments = (
                tuple(c.decode(errors="replace") for c in comment.data().split(b"\0") if c) if comment else ()
            )
            for name in (".dynsym", ".symtab"):
                table = elf.get_section_by_name(name)
                if isinstance(table, SymbolTableSection) and table.get_symbol_by_name(PROFILE_HOOK):
                    hook = True
                    break
    except (ELFError, OSError) as exc:
        raise BuildError(f"{path}: not a readable ELF file ({exc})") from exc
    return ElfFacts(path, tuple(needed), tuple(dict.fromkeys(comments)), hook)


def _openmp(plan: Plan, facts: list[ElfFacts]) -> Check:
    linked = {f.path.name: [n for n in f.needed if OPENMP_LIB.match(n)] for f in facts}
    users = {k: v for k, v in linked.items() if v}
    if plan.openmp():
        want = "libomp" if plan.toolchain.spec.family == "clang" else "libgomp"
        ok = bool(users) and all(any(n.startswith(want) for n in v) for v in users.values())
        detail = (
            f"{want} needed by " + ", ".join(sorted(users))
            if ok
            else f"GGML_OPENMP is on but no binary needs {want} (found: {users or 'none'}); "
            "is the OpenMP runtime for this compiler installed? see `variant doctor`"
        )
        return Check("openmp", ok, detail)
    ok = not users
    detail = "no OpenMP runtime in NEEDED" if ok else f"GGML_OPENMP is off but {users} need an OpenMP runtime"
    return Check("openmp", ok, detail)


def _compiler(plan: Plan, facts: list[ElfFacts]) -> Check:
    markers = {plan.toolchain.cc.comment_marker, plan.toolchain.cxx.comment_marker}
    bad = []
    for f in facts:
        text = "\n".join(f.comments)
        if not any(m in text for m in markers):
            bad.append(f"{f.path.name}: .comment has {list(f.comments)}")
        # crt objects carry gcc's mark in every binary; clang's mark in a gcc
        # variant means a clang-compiled object slipped in.
        elif plan.toolchain.spec.family == "gcc" and "clang version" in text:
            bad.append(f"{f.path.name}: clang-compiled code in a gcc variant")
    if bad:
        return Check("compiler", False, f"expected {sorted(markers)}; " + "; ".join(bad))
    return Check("compiler", True, f"{sorted(markers)[0]} in .comment of every binary")


def _instrument(plan: Plan, facts: list[ElfFacts]) -> Check:
    want = plan.variant.instrument == "uftrace"
    wrong = [f.path.name for f in facts if f.references_profile_hook != want]
    if wrong:
        what = "does not reference" if want else "references"
        return Check("instrument", False, f"{', '.join(wrong)} {what} {PROFILE_HOOK}")
    detail = f"{PROFILE_HOOK} referenced" if want else f"no {PROFILE_HOOK} (not instrumented)"
    return Check("instrument", True, detail)


def _compile_flags(plan: Plan) -> Check:
    """Every compiled file got the instrument's flags (frame pointers for perf)."""
    wanted = set(INSTRUMENTS[plan.variant.instrument].flags.c)
    db = plan.build_dir / "compile_commands.json"
    if not wanted:
        return Check("flags", True, "no instrument flags required")
    if not db.is_file():
        return Check("flags", False, f"{db} missing")
    entries = json.loads(db.read_text())
    missing = [e["file"] for e in entries if not wanted <= set(e.get("command", "").split())]
    if missing:
        return Check(
            "flags", False, f"{len(missing)} files compiled without {sorted(wanted)}, e.g. {missing[0]}"
        )
    return Check("flags", True, f"{sorted(wanted)} on all {len(entries)} compiled files")


def _patches(plan: Plan, base: str) -> Check:
    wt = plan.worktree
    branch = git.out("rev-parse", "--abbrev-ref", "HEAD", cwd=wt)
    want = [patches.file_patch_id(p, wt) for s in plan.series for p in s.patches]
    have = patches.applied_patch_ids(wt, base)
    if branch != plan.branch:
        return Check("patches", False, f"worktree is on {branch}, expected {plan.branch}")
    if want != have:
        return Check(
            "patches",
            False,
            f"expected {len(want)} patch commits on {plan.branch}, found {len(have)} that differ",
        )
    return Check("patches", True, f"{len(want)} patch commit(s) on {plan.branch}")


def patched_warnings(log: str, worktree: Path, patched: set[str]) -> list[str]:
    """Compiler warnings in the build log that point into files the patches touch."""
    found = []
    for m in WARNING.finditer(log):
        path = Path(m["file"])
        rel = str(path.relative_to(worktree)) if path.is_absolute() and path.is_relative_to(worktree) else ""
        if rel in patched:
            found.append(f"{rel}: {m['text']}")
    return list(dict.fromkeys(found))


def _warnings(plan: Plan, base: str, log_file: Path) -> Check:
    """Patches are meant for upstream review: the files they touch compile warning-free."""
    if not plan.series:
        return Check("warnings", True, "no patches")
    patched = set(git.out("diff", "--name-only", f"{base}..HEAD", cwd=plan.worktree).split())
    found = patched_warnings(log_file.read_text(errors="replace"), plan.worktree, patched)
    if found:
        return Check("warnings", False, f"{len(found)} warning(s) in patched files, e.g. {found[0]}")
    return Check("warnings", True, f"no compiler warnings in the {len(patched)} patched file(s)")


def verify(plan: Plan, binaries: list[Path], base: str, log_file: Path | None = None) -> list[Check]:
    facts = [read_elf(b) for b in binaries]
    checks = [
        _openmp(plan, facts),
        _compiler(plan, facts),
        _instrument(plan, facts),
        _compile_flags(plan),
        _patches(plan, base),
    ]
    if log_file is not None:
        checks.append(_warnings(plan, base, log_file))
    failed = [c for c in checks if not c.ok]
    if failed:
        raise BuildError(
            f"{plan.name}: the build does not match its spec:\n"
            + "\n".join(f"  - {c.name}: {c.detail}" for c in failed)
        )
    return checks
