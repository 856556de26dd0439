"""A patched variant's baseline for smoke: the catalogue's same build without (some of) its patches."""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..layout import Layout
from ..plan import plan as plan_mod
from ..spec import variant as spec


def default_baseline(layout: Layout, name: str) -> str | None:
    """The catalogue's variant that is this one without (some of) its patches: the closest one.

    Same source, toolchain, build type, instrument, options and flags, and a
    strict subset of the series (a fork variant keeps its fixes, bitnet-tl2-batch
    say, when the series under test is taken away); of those, the one with the
    most series. Targets do not count: which programs are built does not change
    the numerics of the ones both variants have.
    """
    me = plan_mod.make(layout, name)
    if not me.series:
        return None

    def essence(p: plan_mod.Plan) -> tuple[Any, ...]:
        return (
            p.source.identity(),
            p.toolchain.identity(),
            p.variant.build_type,
            p.variant.instrument,
            p.options,
            p.flags,
        )

    mine, my_series = essence(me), {s.name for s in me.series}
    best: tuple[int, str] | None = None
    for other in spec.names(layout.variants_dir):
        if other == name:
            continue
        try:
            p = plan_mod.make(layout, other)
        except UserError:
            continue
        theirs = {s.name for s in p.series}
        if theirs < my_series and essence(p) == mine and (best is None or len(theirs) > best[0]):
            best = (len(theirs), other)
    return best[1] if best else None
