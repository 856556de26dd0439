"""A run under a profile's memory-max: the cgroup around it, its models cold, the limit in the record.

A page is charged to the cgroup that brought it into the page cache (v1 and v2):
a model cached before the run (by an earlier run, or by generating it) would
be mapped without a charge and never streamed. So each of the run's models
is evicted once when the cgroup is made; from then on its pages come in
through the limited processes and the limit holds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..host import cgroup
from . import pagecache
from .case import Context, Say, Target
from .profiles import Profile


@contextmanager
def limited(profile: Profile, say: Say) -> Iterator[Profile]:
    """profile, holding its memory cgroup while the block runs (unchanged without memory-max)."""
    if profile.memory_max is None:
        yield profile
        return
    with cgroup.limited(profile.memory_max) as group:
        shown = cgroup.shown(group.limit)
        say(f"memory-max {shown}: every benchmark process runs in cgroup v{group.version} {group.path.name}")
        yield dataclasses.replace(profile, cgroup=group)
        if (peak := group.peak()) is not None:
            say(f"memory-max {shown}: the cgroup held at most {peak / 2**20:.0f} MiB")


def targets(contexts: Iterable[Context]) -> list[Target]:
    """Each model the run's model suites read, once."""
    seen: dict[str, Target] = {}
    for ctx in contexts:
        for t in ctx.targets():
            seen.setdefault(str(t.path), t)
    return list(seen.values())


def start_cold(profile: Profile, models: list[Target]) -> None:
    """Under a cgroup, evict every model once, so its pages are charged to it as the limited programs
    read them (each file's pages only: --drop-caches is for cold loads, not for this)."""
    if profile.cgroup is not None:
        for part in (f for t in models for f in t.files):
            pagecache.evict(part)


def record(profile: Profile, models: list[Target]) -> dict[str, Any]:
    """What goes in the run's hardware record: the limit, the cgroup version, each model's size over it."""
    group = profile.cgroup
    if group is None:
        return {}
    return {
        "memory_limit": {
            "bytes": group.limit,
            "cgroup": f"v{group.version}",
            "model_to_limit": {str(t.params["model"]): round(t.size / group.limit, 2) for t in models},
        }
    }
