"""Which variant can run which model: the file's tensor types against the types the variant's ggml.h defines.

Decided before anything runs, from the header and the variant's source: a
type the variant's code base does not define (T-MAC's i4 on upstream, ik's
iq4_k on upstream, BitNet's tl2 anywhere but BitNet) makes the cell a skip
with its reason, not a failure after a minute of loading.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .. import git
from ..layout import Layout
from . import types
from .installed import Installed
from .own import OwnModel

GGML_H = "ggml/include/ggml.h"


@functools.cache
def _enum_at(git_dir: Path, ref: str, path: str) -> dict[int, str]:
    res = git.git("show", f"{ref}:{path}", git_dir=git_dir, check=False)
    return types.parse_enum(res.stdout) if res.returncode == 0 else {}


def known_types(layout: Layout, inst: Installed) -> dict[int, str]:
    """id -> name of every tensor type the variant's code base defines; {} when its source cannot be read.

    The code base is the innermost tree that has ggml (BitNet's 3rdparty/llama.cpp), read from the
    source mirror at the published build's commit (nested trees: at the variant's branch).
    """
    src = inst.manifest.get("source") or {}
    trees = sorted(inst.manifest.get("trees") or [], key=lambda t: -len(str(t.get("path", ""))))
    for tree in trees:
        source = str(tree.get("source", ""))
        git_dir = layout.mirror(source)
        if not source or not git_dir.is_dir():
            continue
        main = tree.get("path") == "."
        ref = str(src.get("head_commit") or "") if main else f"variant/{inst.name}"
        found = _enum_at(git_dir, ref, GGML_H) if ref else {}
        if found:
            return found
    return {}


def why_not(model: OwnModel, inst: Installed, known: dict[int, str]) -> str | None:
    """Why inst cannot run model ("<source> has no kernel for type X"); None: it can, or cannot tell."""
    if not known:
        return None
    source = (inst.manifest.get("source") or {}).get("name", inst.name)
    lacking = []
    for name, type_id in model.type_ids:
        theirs = known.get(type_id)
        # a name this tool resolved must match; an id only a fork defines (ik's 139) is taken on trust
        if theirs is None or (not name.startswith("type") and theirs != name):
            # own.py names an id no table here knows "type139": said by its number, not "type type139"
            lacking.append(f"id {type_id}" if name.startswith("type") else name)
    if not lacking:
        return None
    return f"{source} has no kernel for type {', '.join(lacking)}"


SECONDS_PER_GIB = 30.0  # a big model's time to stream from disk and run, generously


def timeout_for(model: OwnModel | None, base: float) -> float:
    """A program's timeout on model: base, or for a user's model 60 s + 30 s per GiB when that is longer."""
    if model is None:
        return base
    return max(base, 60.0 + SECONDS_PER_GIB * model.size / 2**30)
