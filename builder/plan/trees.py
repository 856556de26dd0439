"""The trees a variant is built from: its source's, and the sources nested in it, each with its series.

BitNet builds only as BitNet/3rdparty/llama.cpp, its llama.cpp fork placed
inside the BitNet tree. Each tree is a worktree of its own source's mirror, on
the branch variant/NAME; a series goes to the tree whose source it has a port
for (the futex barrier's BitNet port patches the nested llama.cpp, a fix to
BitNet's code generator patches BitNet itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..layout import Layout
from ..patch import series as patches
from ..patch.series import Series
from ..source.mirror import expected_origin
from ..source.sources import Source
from ..spec.variant import Variant


@dataclass(frozen=True)
class Tree:
    path: str  # inside the variant's worktree: "." for the variant's source itself
    source: Source
    series: tuple[Series, ...]
    origin: str  # see source.mirror.expected_origin

    def worktree(self, root: Path) -> Path:
        return root if self.path == "." else root / self.path

    def identity(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source.identity(),
            "origin": self.origin,
            "patches": [[s.name, p.path.name, p.sha256] for s in self.series for p in s.patches],
        }


def resolve(
    layout: Layout, v: Variant, src: Source, sources: dict[str, Source], *, offline: bool
) -> tuple[Tree, ...]:
    """The variant's trees, root first, with every series of the spec given to the tree it ports to."""
    places = [(".", src), *((path, sources[name]) for path, name in src.nested)]
    given: dict[str, list[Series]] = {path: [] for path, _ in places}
    for i, name in enumerate(v.patches):
        where, key = v.origin("patches"), f"patches[{i}]"
        head = patches.header(layout.patches_dir, name, referenced_from=where, key=key)
        target = next(((path, s) for path, s in places if head.supports(s.name)), None)
        if target is None:
            have = ", ".join(b for b in head.bases() if b != patches.TOP) or "none"
            bases = ", ".join(s.name for _, s in places)
            raise SpecError(
                where,
                key,
                f'series "{name}" has no port for {bases} (the trees of source "{src.name}"); '
                f"it supports: {have}",
            )
        path, tree_src = target
        given[path].append(
            patches.load(layout.patches_dir, name, tree_src.name, referenced_from=where, key=key)
        )
    return tuple(
        Tree(path, s, tuple(given[path]), expected_origin(layout, s, offline=offline)) for path, s in places
    )
