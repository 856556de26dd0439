"""An estimate of the CPU's arithmetic peak, from its ISA and clock: what prompt processing runs against.

Prompt processing multiplies matrices by matrices: it is bound by arithmetic,
not by memory. Nothing here measures that bound; it is computed from what
/proc/cpuinfo says (the SIMD extensions, the clock) and assumptions stated in
the record: two FMA pipes per core (most x86 server cores since Haswell; some
have one 512-bit pipe, which halves the AVX-512 figure), the clock as the
kernel reports it (no turbo), one thread per physical core. It is an
estimate, and every table that shows it says so. Tiles (AMX) are noted but
not counted: ggml uses them only through its AMX buffer type, which
test-backend-ops does not.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

from . import topology

# Per core and cycle, with two pipes: (flag, f32 FLOPs from FMAs, int8 ops from dot-product instructions).
# An int8 multiply-add counts as 2 ops, as an FMA counts as 2 FLOPs.
# Without VNNI a byte dot product takes two instructions (vpmaddubsw, vpmaddwd): half the products.
ISA = (
    ("avx512f", 2 * 16 * 2, 2 * 64),
    ("avx2", 2 * 8 * 2, 2 * 32),
    ("avx", 2 * 8, None),  # a multiply and an add pipe, no FMA
    ("sse2", 2 * 4, None),
    ("asimd", 2 * 4 * 2, None),  # Arm NEON (aarch64 flags): 128-bit FMAs
)
INT8 = (("avx512_vnni", 2 * 64 * 2), ("avx_vnni", 2 * 32 * 2), ("asimddp", 2 * 16 * 2))
# Half-precision arithmetic at twice the f32 rate where the ISA has it (AVX512-FP16 FMAs, AVX512-BF16 dot
# products, Arm's fphp): a kernel that multiplies f16 weights in f32 then reaches half of this.
HALF = {"f16": ("avx512_fp16", "fphp"), "bf16": ("avx512_bf16", "bf16")}
ASSUMES = (
    "2 FMA pipes per core, the base clock (no turbo), f32 (or native f16/bf16) FMAs for float weights, "
    "int8 dot products for quants"
)
# The clock, best first: cpufreq's base frequency (x86 with a P-state driver), /proc/cpuinfo's "cpu MHz"
# (a VM's reported clock; on bare metal the current one), cpufreq's maximum (Arm, whose cpuinfo has none).
CPUFREQ = "sys/devices/system/cpu/cpu0/cpufreq"


def _clock_mhz(root: Path) -> float | None:
    """The first clock of CPUFREQ's order that can be read, in MHz."""
    for name in ("base_frequency", "cpu MHz", "cpuinfo_max_freq"):
        with contextlib.suppress(OSError, ValueError):
            if name != "cpu MHz":
                return int((root / CPUFREQ / name).read_text()) / 1000  # kHz
            if text := topology.cpuinfo(root, name):
                return float(text)
    return None


def estimate(root: Path = topology.ROOT) -> dict[str, Any] | None:
    """{"ghz", "cores", "isa", "f32_per_cycle", "int8_per_cycle", "amx", "assumes"}; None without a clock."""
    flags = set((topology.cpuinfo(root, "flags", "Features") or "").split())
    mhz = _clock_mhz(root)
    isa = next(((flag, f32, i8) for flag, f32, i8 in ISA if flag in flags), None)
    if not mhz or isa is None:
        return None
    name, f32, i8 = isa
    if name == "avx2" and "fma" not in flags:
        f32 //= 2
    i8 = next((ops for flag, ops in INT8 if flag in flags), i8 if i8 is not None else f32)
    cores = topology.topology(root).cores
    half = {f"{t}_per_cycle": 2 * f32 if any(f in flags for f in names) else f32 for t, names in HALF.items()}
    return {"ghz": round(mhz / 1000, 3), "cores": cores, "isa": name, "f32_per_cycle": f32, **half,
            "int8_per_cycle": i8, "amx": "amx_int8" in flags, "assumes": ASSUMES}  # fmt: skip


def gflops(peak: dict[str, Any], type_: str | None, threads: int | None) -> float | None:
    """The estimated peak for a weight type at a thread count (capped at the cores); None if unknowable.

    f32 at the f32 rate, f16 and bf16 at their own (HALF); every other type (the quants, a fork's LUT
    types) at the int8 dot-product rate. A model of mixed types (type_ None) has no one peak.
    """
    if type_ is None:
        return None
    try:
        cores = min(int(threads or peak["cores"]), int(peak["cores"]))
        if type_ in ("f16", "bf16"):  # a record from before the half rates: f32's
            per_cycle = peak.get(f"{type_}_per_cycle", peak["f32_per_cycle"])
        else:
            per_cycle = peak["f32_per_cycle"] if type_ == "f32" else peak["int8_per_cycle"]
        out = float(cores * float(peak["ghz"]) * float(per_cycle))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None  # a record of another shape (another version's, an import)
    return out if math.isfinite(out) and out > 0 else None
