"""Tensor types by id: what a GGUF file's numbers mean, and what a code base's ggml.h says it knows.

Ids 0 to 35 mean the same in every code base this tool builds. Past that the
forks diverge: 36 to 39 are BitNet's i2_s/i8_s/tl1/tl2, T-MAC's i1..i4 and
upstream's removed IQ4_NL_x_x plus mxfp4, while ik_llama.cpp numbers its own
types from 133 up. A file does not say which numbering it uses, so an id that
several code bases define is named by what the file shows: the tensor's bits
per weight decide (mxfp4 4.25, T-MAC i4 5.0 with its scales, BitNet tl2 about
1.7), and the model's architecture only breaks a near tie. A fork converts
another's models (T-MAC runs BitNet b1.58 as its own 2-bit i2, id 37 like
BitNet's 8-bit i8_s), so an architecture alone names no type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# (name, elements per block, bytes per block) where one layout holds in every code base.
COMMON: dict[int, tuple[str, int, int]] = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22),
    7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 40), 10: ("q2_k", 256, 84),
    11: ("q3_k", 256, 110), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176), 14: ("q6_k", 256, 210),
    15: ("q8_k", 256, 292), 16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74), 18: ("iq3_xxs", 256, 98),
    19: ("iq1_s", 256, 50), 20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110), 22: ("iq2_s", 256, 82),
    23: ("iq4_xs", 256, 136), 24: ("i8", 1, 1), 25: ("i16", 1, 2), 26: ("i32", 1, 4), 27: ("i64", 1, 8),
    28: ("f64", 1, 8), 29: ("iq1_m", 256, 56), 30: ("bf16", 1, 2), 34: ("tq1_0", 256, 54),
    35: ("tq2_0", 256, 66),
}  # fmt: skip

# Ids that name different types in different code bases: (name, bits per weight as stored, arch or None).
# The bits are what the files hold, scales included (measured on the forks' own converters' output).
CONTESTED: dict[int, tuple[tuple[str, float, str | None], ...]] = {
    36: (("i2_s", 2.0, None), ("i1", 1.25, None)),
    37: (("i8_s", 8.0, "bitnet"), ("i2", 3.0, None)),
    38: (("tl1", 2.0, "bitnet"), ("i3", 4.0, None)),
    39: (("mxfp4", 4.25, None), ("tl2", 1.7, "bitnet"), ("i4", 5.0, None)),
    40: (("nvfp4", 4.5, None),),
    41: (("q1_0", 1.125, None),),
    42: (("q2_0", 2.125, None),),
}


# Bits per weight within which two types are too close to tell apart: the architecture then decides.
NEAR = 0.3


def nbytes(type_id: int, elements: int) -> int | None:
    """A tensor's bytes where its type's layout is the same everywhere; None where it is not known."""
    if type_id not in COMMON:
        return None
    _, block, size = COMMON[type_id]
    return -(-elements // block) * size


def name_of(type_id: int, bits: float, arch: str) -> str:
    """The type a file means by type_id: the one nearest the tensor's bits per weight.

    Of the types within NEAR of the nearest, one of the model's architecture wins.
    """
    if type_id in COMMON:
        return COMMON[type_id][0]
    options = CONTESTED.get(type_id)
    if not options:
        return f"type{type_id}"  # a fork's own (ik's iq4_k is 139): named by the code base that knows it
    best = min(abs(o[1] - bits) for o in options)
    near = [o for o in options if abs(o[1] - bits) <= best + NEAR]
    ours = [o for o in near if o[2] is not None and arch.startswith(o[2])]
    return min(ours or near, key=lambda o: abs(o[1] - bits))[0]


# One layout under two names: ik_llama.cpp's q1_0_g128 (id 41) is upstream's q1_0, block for block.
ALIASES = {"q1_0_g128": "q1_0"}

ENUM = re.compile(r"enum\s+ggml_type\s*\{(.*?)\}", re.S)
MEMBER = re.compile(r"^\s*GGML_TYPE_([A-Z0-9_]+)\s*=\s*(\d+)", re.M)


def parse_enum(ggml_h: str) -> dict[int, str]:
    """id -> lower-case name in the `enum ggml_type` of a code base's ggml.h (commented-out ones are gone).

    A name ALIASES knows is given as the name the file's types are resolved to.
    """
    found = ENUM.search(ggml_h)
    if not found:
        return {}
    body = re.sub(r"//[^\n]*", "", found[1])
    return {int(i): ALIASES.get(n.lower(), n.lower()) for n, i in MEMBER.findall(body) if n != "COUNT"}


def resolve_names(
    ids: Iterable[int], known: dict[int, str], bits: dict[int, float], arch: str
) -> dict[int, str]:
    """The file's type names; an id only a code base's enum defines (ik's 139) takes that enum's name."""
    out = {}
    for i in ids:
        name = name_of(i, bits.get(i, 0.0), arch)
        out[i] = known.get(i, name) if name.startswith("type") else name
    return out
