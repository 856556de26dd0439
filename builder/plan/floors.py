"""A source's compiler floor ([NAME.compiler]): the family its kernels need, the oldest version.

A variant that pairs T-MAC's fork with gcc is a spec error (the fork refuses
gcc); a machine whose clang is older than BitNet's floor has the spec right
and the compiler wrong: a status ("needs clang >= 18"), like a missing one.
"""

from __future__ import annotations

from ..errors import SpecError
from ..source.sources import CompilerFloor, Source
from ..spec.toolchain import Toolchain, ToolchainMissing, ToolchainSpec, resolve
from ..spec.variant import Variant


def check_family(
    v: Variant, tspec: ToolchainSpec, trees: list[Source]
) -> tuple[Source, CompilerFloor] | None:
    """The strictest floor among the trees (the highest version); a wrong family is a SpecError now."""
    found: tuple[Source, CompilerFloor] | None = None
    for src in trees:
        floor = src.compiler
        if floor is None:
            continue
        if floor.families and tspec.family not in floor.families:
            why = f" ({floor.why})" if floor.why else ""
            raise SpecError(
                v.origin("toolchain"),
                "toolchain",
                f'source "{src.name}" needs a {" or ".join(floor.families)} toolchain{why}; '
                f'"{tspec.name}" is {tspec.family}',
            )
        if found is None or floor.min_version > found[1].min_version:
            found = (src, floor)
    return found


def check_version(tc: Toolchain, floor: tuple[Source, CompilerFloor] | None) -> None:
    if floor is None or not floor[1].min_version:
        return
    src, need = floor
    for comp in (tc.cc, tc.cxx):
        if comp.version < need.min_version:
            want = ".".join(map(str, need.min_version))
            have = ".".join(map(str, comp.version))
            hint = f"; install with: {tc.spec.install}" if tc.spec.install else ""
            raise ToolchainMissing(
                tc.spec,
                f'source "{src.name}" needs {tc.spec.family} >= {want}; {comp.path} is {have}{hint}',
                f"needs {tc.spec.family} >= {want} (found {have})",
            )


def survey(sources: list[Source], toolchains: list[ToolchainSpec]) -> list[dict[str, object]]:
    """For `variant doctor`: each source's compiler floor against the toolchains this machine has."""
    rows: list[dict[str, object]] = []
    for src in sources:
        floor = src.compiler
        if floor is None:
            continue
        want = ".".join(map(str, floor.min_version))
        need = f"{' or '.join(floor.families) or 'any compiler'}{f' >= {want}' if want else ''}"
        fitting = [t for t in toolchains if not floor.families or t.family in floor.families]
        best: dict[str, object] = {"source": src.name, "needs": need, "ok": False, "found": "", "install": ""}
        for tspec in fitting:
            best["install"] = best["install"] or tspec.install
            try:
                tc = resolve(tspec)
                check_version(tc, (src, floor))
            except ToolchainMissing as exc:
                best["found"] = best["found"] or exc.status
                continue
            best.update(ok=True, found=f"{tspec.name}: {tc.cc.version_line}", install="")
            break
        rows.append(best)
    return rows
