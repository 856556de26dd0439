"""A run's hardware record (host/topology.py's `hardware()`, in runs.hardware) as a short table.

A record may come from another machine or another version of this tool (the
import checks only that it is JSON the store holds), so any key may be
missing or hold something else: what is not there, or not of its kind, is left
out rather than shown wrong.
"""

from __future__ import annotations

import math
from typing import Any

from ..host import peak


def number(value: Any) -> float | None:
    """A finite number of a record, as a float; None for anything else (a string, true, a NaN, and an
    import's 1e999 or 10**400, which would not format)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def _number(value: Any) -> bool:
    return number(value) is not None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def mapping(value: Any) -> dict[str, Any]:
    """An object of a record; an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A scalar as shown; None for anything else (absent, null, true/false, a list, an object)."""
    return str(value) if isinstance(value, str) or _number(value) else None


def _gib(value: Any) -> str | None:
    return f"{value / (1 << 30):.1f} GiB" if _number(value) else None


def _page(kb: int) -> str:
    """A huge page size: 2048 kB is "2 MiB", 1048576 kB "1 GiB"."""
    for unit, scale in (("GiB", 1 << 20), ("MiB", 1 << 10)):
        if kb % scale == 0:
            return f"{kb // scale} {unit}"
    return f"{kb} KiB"


def _parts(*parts: str | None) -> str | None:
    return ", ".join(p for p in parts if p) or None


def _node(node: dict[str, Any]) -> str | None:
    cpus, cores = _text(node.get("cpus")), _text(node.get("physical_cores"))
    return _parts(
        cpus and f"CPUs {cpus}", cores and f"{cores} physical cores", _gib(node.get("memory_bytes"))
    )


def _storage(where: dict[str, Any]) -> str | None:
    """What a file is on: "ext4 on nvme0n1p2, non-rotational, mounted at /srv"; "tmpfs, no block device"."""
    fstype, device = _text(where.get("fstype")), _text(where.get("device"))
    rotational = where.get("rotational")
    return _parts(
        " ".join(filter(None, (fstype, device and f"on {device}"))),
        "no block device" if "device" in where and not device else None,
        ("rotational" if rotational else "non-rotational") if isinstance(rotational, bool) else None,
        (mount := _text(where.get("mount_point"))) and f"mounted at {mount}",
    )


def _limit(limit: dict[str, Any]) -> str | None:
    """A profile's memory-max: "2.0 GiB (cgroup v1); f16 2.9x the limit"."""
    size = _gib(limit.get("bytes"))
    if size is None:
        return None
    ratios = [
        f"{_text(name)} {r:.1f}x the limit"
        for name, r in mapping(limit.get("model_to_limit")).items()
        if isinstance(r, int | float) and not isinstance(r, bool)
    ]
    cgroup = _text(limit.get("cgroup"))
    return "; ".join([size + (f" (cgroup {cgroup})" if cgroup else ""), *ratios])


def _figure(f: dict[str, Any]) -> str | None:
    """A probe's figure: "14.4 GB/s [14.3, 14.7]"."""
    m, lo, hi = (f.get(k) for k in ("median", "min", "max"))
    return f"{m:.1f} GB/s [{lo:.1f}, {hi:.1f}]" if _number(m) and _number(lo) and _number(hi) else None


def _bandwidth(bw: dict[str, Any]) -> str | None:
    """The probe: "read t=1 14.4 GB/s [14.3, 14.7], t=2 ...; triad ...; buffer 1920 MiB, LLC 480 MiB"."""
    parts = []
    for kind in ("read", "triad"):
        found = [f"t={t} {fig}" for t, f in mapping(bw.get(kind)).items() if (fig := _figure(mapping(f)))]
        parts.append(f"{kind} {', '.join(found)}" if found else None)
    size, llc = bw.get("buffer_bytes", "-"), bw.get("llc_bytes", "-")
    buffer = f"buffer {int(size) >> 20} MiB" if _number(size) else None
    cache = f"last-level cache {int(llc) >> 20} MiB" if _number(llc) else None
    return "; ".join(p for p in (*parts, _parts(buffer, cache)) if p) or None


def _peak(p: dict[str, Any]) -> str | None:
    """The arithmetic peak estimate: "2 cores x 2.6 GHz, avx512f: 333 GFLOPS f32, 1331 int8 (estimate)"."""
    cores, ghz = number(p.get("cores")), number(p.get("ghz"))
    f32, i8 = peak.gflops(p, "f32", None), peak.gflops(p, "q8_0", None)  # all cores
    if cores is None or ghz is None or f32 is None or i8 is None:
        return None
    isa = _text(p.get("isa")) or "?"
    return f"{cores:g} cores x {ghz:g} GHz, {isa}: {f32:.0f} GFLOPS f32, {i8:.0f} int8 (an estimate)"


def hardware_lines(hw: dict[str, Any]) -> list[str]:
    """The record as aligned "label  value" lines; an empty record gives none.

    The CPU model, sockets, CPUs, each NUMA node (its CPUs, cores and memory), memory available, huge
    page sizes, THP, a profile's memory-max (with each model's size over it), then each model file (by
    name) with the filesystem and device it is on.
    """
    cores, cpus = _text(hw.get("physical_cores")), _text(hw.get("logical_cpus"))
    rows: list[tuple[str, str | None]] = [
        ("CPU model", _text(hw.get("cpu_model"))),
        ("sockets", _text(hw.get("sockets"))),
        ("CPUs", _parts(cores and f"{cores} physical", cpus and f"{cpus} logical")),
    ]
    for i, node in enumerate(_list(hw.get("numa_nodes"))):
        if isinstance(node, dict):
            rows.append((f"NUMA node {_text(node.get('id')) or i}", _node(node)))
    sizes = _list(hw.get("hugepage_sizes_kb"))
    pages = [_page(kb) for kb in sizes if isinstance(kb, int) and not isinstance(kb, bool) and kb > 0]
    rows += [
        ("memory available", _gib(hw.get("mem_available_bytes"))),
        ("huge pages", ", ".join(pages) or None),
        ("THP", _text(hw.get("thp"))),
        ("memory limit", _limit(mapping(hw.get("memory_limit")))),
        ("memory bandwidth", _bandwidth(mapping(hw.get("bandwidth")))),
        ("arithmetic peak", _peak(mapping(hw.get("peak")))),
    ]
    for name, where in mapping(hw.get("storage")).items():
        if isinstance(where, dict):
            rows.append((name, _storage(where)))
    shown = [(label, value) for label, value in rows if value]
    width = max((len(label) for label, _ in shown), default=0)
    return [f"{label:<{width}}  {value}" for label, value in shown]
