"""The CPU as a compiler sees it: what `-march=native` resolves to here.

A GGML_NATIVE build compiles for the build machine's CPU, so a shared ccache
or a copied `.variant/` must never serve it to another CPU: the resolved
architecture and the feature macros `-march=native` adds go into the hash.
"""

from __future__ import annotations

import functools
import re

from ..run import capture

_NULL_C = ["-x", "c", "/dev/null"]


def _macros(argv: list[str]) -> set[str]:
    out = capture(argv, check=False, timeout=30).stdout
    return {line.strip() for line in out.splitlines() if line.startswith("#define ")}


@functools.cache
def native_isa(cc: str) -> dict[str, object]:
    """{"march": "znver3", "features": ["__AVX2__ 1", ...]} for the compiler at path cc."""
    base = _macros([cc, "-dM", "-E", *_NULL_C])
    native = _macros([cc, "-march=native", "-dM", "-E", *_NULL_C])
    features = sorted(m.removeprefix("#define ") for m in native - base)
    # -### prints the driver's expansion: gcc's cc1 line carries -march=znver3,
    # clang's -cc1 line "-target-cpu" "znver3".
    res = capture([cc, "-march=native", "-###", "-c", *_NULL_C, "-o", "/dev/null"], check=False, timeout=30)
    text = res.stderr + res.stdout
    found = [m for m in re.findall(r"-march=([\w.-]+)", text) if m != "native"]
    found += re.findall(r'"-target-cpu" "([\w.-]+)"', text)
    return {"march": found[-1] if found else "unknown", "features": features}
