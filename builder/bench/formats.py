"""The formats suite: one set of weights in every format the run's kernels need, through llama-bench.

This answers the question a fork is built for: is its kernel faster than the
plain one on the same weights? A model recipe (models/forkmodels.py) writes the
weights in the fork kernel's format and in plain ggml formats (f16, f32, q4_0),
with the fork's own tools; every variant of the run then measures each format
it can run (upstream cannot run T-MAC's i4; a T-MAC build runs i4, q4_0 and
f16), interleaved as every suite is. Entries VARIANT:FORMAT compare the rows
(`variant compare tmac-clang:q4_0 tmac-clang:i4`).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from ..models import forkmodels
from ..models.installed import Installed
from ..smoke.forksmoke import enabled
from ..source import sources as sources_mod
from ..store.results import Measurement
from .case import Case, Context, Target
from .kernels import llama_bench

# ggml types that every llama.cpp of the catalogue's pins runs without a fork's kernels.
PLAIN = ("f32", "f16", "q8_0", "q4_0")


def _recipes(ctx: Context) -> dict[str, str]:
    """Variant -> the model recipe its source names ([NAME.smoke] models), for the run's forks."""
    srcs = sources_mod.load_all(ctx.layout.sources_file)  # once for the run, not once per variant
    found = {i.name: srcs[i.manifest["source"]["name"]].models for i in ctx.insts
             if i.manifest["source"]["name"] in srcs}  # fmt: skip
    return {name: recipe for name, recipe in found.items() if recipe}


def runnable(recipe: forkmodels.Recipe, inst: Installed, own: bool) -> tuple[str, ...]:
    """The recipe's formats this build runs: plain ones, and its kernels' own if its source has the recipe."""
    formats = [f for f, _ in recipe.files if f in PLAIN]
    if own:
        # the kernels' format, and the fork's other kernels (bitnet.cpp's TL2 builds keep i2_s)
        mine = [recipe.format_for(enabled(inst, recipe.kernel_option)), recipe.fallback]
        formats = [f for f in mine if f] + formats
    return tuple(dict.fromkeys(formats))


def formats_cases(ctx: Context) -> list[Case]:
    owners = _recipes(ctx)
    name = ctx.recipe or next(iter(owners.values()), "")
    if not name:
        raise UserError(
            "the formats suite needs a model recipe: a variant of a fork with one "
            f"({', '.join(sorted(forkmodels.RECIPES))}) in the run, or --recipe"
        )
    if name not in forkmodels.RECIPES:
        raise UserError(f'--recipe "{name}": known recipes are {", ".join(sorted(forkmodels.RECIPES))}')
    recipe = forkmodels.RECIPES[name]
    writer = next((i for i in ctx.insts if owners.get(i.name) == name), None)
    if writer is None:
        raise UserError(
            f"the {name} models are written by the fork that runs them: add a variant of a source "
            f"whose [smoke] models is {name!r} to the run"
        )
    files = forkmodels.ensure(ctx.layout, writer, recipe, ctx.say)
    can = {i.name: runnable(recipe, i, owners.get(i.name) == name) for i in ctx.insts}
    wanted = [f for f, _ in recipe.files if any(f in c for c in can.values())]
    cases = []
    for fmt in wanted:
        for t in ctx.threads:
            for pp in (True, False):
                target = Target(files[fmt], {"model": name, "format": fmt}, files[fmt].stat().st_size)
                run = llama_bench(ctx, "formats", target, t, pp)
                label = f"formats {name} {fmt} {'pp' if pp else 'tg'} t={t}"
                cases.append(Case("formats", label, _only(fmt, can, run)))
    return cases


def _only(
    fmt: str, can: dict[str, tuple[str, ...]], run: Callable[[Installed], list[Measurement]]
) -> Callable[[Installed], list[Measurement]]:
    """The measurement on the variants that run fmt; nothing (not a failure) on the others."""

    def guarded(inst: Installed) -> list[Measurement]:
        return run(inst) if fmt in can.get(inst.name, ()) else []

    return guarded
