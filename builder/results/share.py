"""How far a figure is from the machine's limit: generation against memory bandwidth, prompt against compute.

A tg row's achieved bandwidth is the bytes a generated token reads (the
bytes_per_token fact `variant bench` stores beside it, models/traffic.py) times
its tokens/s; its share is that over the best read bandwidth the probe
measured at the row's thread count (host/bandwidth.py, in the run's hardware
record): STREAM's convention, since a busy neighbour only ever slows memory
down (a probe on this VM once read 21.5 GB/s at its median and 30.5 at its
best, where two quieter ones read 26.3 and 28.4 at their medians). A share above 100% (the achieved
median past the probe's best repetition, beyond its whole spread) is flagged
"!": the figure is not of memory. The usual cause is a model whose
bytes per token fit in the last-level cache, flagged "(fits in cache)": part of
it may be read from the cache, so its share is not of memory alone. (On a
shared machine the cache the kernel reports is shared with others: such a
model can still read near the probe's figure, as it does here.)

A pp row's GFLOPS are 2 x the weight elements a token is multiplied by
(flops_per_token) times tokens/s; an ops row measures GFLOPS itself. Both are
set against host/peak.py's estimate from the ISA and clock, and say "est.".

The hardware record may come from another machine or version (an import), so
every key is checked for its kind; what is missing gives no share, never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..bench.stats import Summary
from ..host import peak as peak_mod
from ..store.results import FACTS
from .hardware import mapping, number

Key = tuple[str, str, str, str, str]  # compare.grouped's: suite, metric, unit, params (JSON), better
Facts = dict[
    tuple[str, str, str], dict[str, float]
]  # (suite, params JSON, variant or entry) -> fact -> value


@dataclass(frozen=True)
class Bound:
    kind: str  # "memory" or "compute"
    achieved: Summary  # GB/s or GFLOPS
    limit: Summary | None  # the probe's read GB/s, or the peak estimate (n = 0)
    bytes_per_token: int | None = None
    in_cache: bool = False
    streamed: bool = False  # a model larger than the run's memory limit: no share of memory

    @property
    def share(self) -> float | None:
        """The achieved median over the limit: the probe's best repetition (an estimate's one value)."""
        return self.achieved.median / self.limit.max if self.limit and self.limit.max > 0 else None

    @property
    def over(self) -> bool:
        """Above the limit beyond its spread: the achieved median past the probe's best repetition (or the
        estimated peak: then the estimate missed what the kernel uses)."""
        return self.limit is not None and self.achieved.median > self.limit.max

    def cell(self) -> str:
        unit = "GB/s" if self.kind == "memory" else "GFLOPS"
        text = f"{_num(self.achieved.median)} {unit}"
        if self.share is not None and self.limit is not None:
            of = f"est. {_num(self.limit.max)}" if self.kind == "compute" else _num(self.limit.max)
            text += f", {100 * self.share:.0f}% of {of}"
        if self.over:
            text += " !"
        if self.in_cache:
            text += " (fits in cache)"
        if self.streamed:
            text += " (over the memory limit: from disk)"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "achieved": self.achieved.median, "unit": "GB/s" if self.kind == "memory"
                else "GFLOPS", "limit": self.limit.max if self.limit else None,
                "limit_estimated": self.kind == "compute", "share": self.share, "over_limit": self.over,
                "in_cache": self.in_cache, "streamed": self.streamed,
                "bytes_per_token": self.bytes_per_token}  # fmt: skip


def _num(x: float) -> str:
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def split(groups: dict[Key, dict[str, dict[int, float | None]]]) -> tuple[dict[Key, Any], Facts]:
    """The groups to show (no facts) and the facts, by (suite, params, variant or entry)."""
    shown: dict[Key, Any] = {}
    facts: Facts = {}
    for key, by_variant in groups.items():
        if key[1] not in FACTS:
            shown[key] = by_variant
            continue
        for label, series in by_variant.items():
            value = next((v for v in series.values() if v is not None), None)
            if value is not None:
                facts.setdefault((key[0], key[3], label), {})[key[1]] = value
    return shown, facts


def probe(hw: dict[str, Any] | None, threads: Any) -> Summary | None:
    """The run's read bandwidth at a thread count, GB/s, from its hardware record."""
    read = mapping(mapping(mapping(mapping(hw).get("bandwidth")).get("read")).get(str(threads)))
    figures = [number(mapping(read).get(k)) for k in ("median", "min", "max")]
    n = mapping(read).get("n")
    if None in figures or not isinstance(n, int) or isinstance(n, bool):
        return None
    median, low, high = (f for f in figures if f is not None)
    if not 0 < low <= median <= high:
        return None  # not a probe's figures
    return Summary(n, median, low, high)


def _scaled(value: Summary, per_token: float) -> Summary:
    """Tokens/s as GB/s or GFLOPS: times the bytes or FLOPs a token takes, in billions."""
    return Summary(value.n, *(per_token * x / 1e9 for x in (value.median, value.min, value.max)))


def _streams(hw: dict[str, Any] | None) -> bool:
    """The run had a memory limit below a model's size (bench/limit.py's record)."""
    ratios = mapping(mapping(mapping(hw).get("memory_limit")).get("model_to_limit")).values()
    return any((r := number(x)) is not None and r > 1 for x in ratios)


def _type(suite: str, params: dict[str, Any]) -> str | None:
    """The weight type a row's products run in: the ops row's, the format's, the wide model's."""
    if suite == "ops":
        return str(params.get("type"))
    if "format" in params:
        return str(params["format"])
    return None if "model_id" in params else str(params.get("model"))  # a user's model: mixed types


def bound(key: Key, label: str, value: Summary, facts: Facts, hw: dict[str, Any] | None) -> Bound | None:
    """The limit of one row's figure for one variant (or entry), or None where none applies or is known."""
    suite, metric, _, params_json, _ = key
    params = json.loads(params_json)
    mine = facts.get((suite, params_json, label), {})
    threads = params.get("threads")
    if metric == "tg_tps" and "bytes_per_token" in mine:
        nbytes = int(mine["bytes_per_token"])
        llc = number(mapping(mapping(hw).get("bandwidth")).get("llc_bytes"))
        # a model larger than the run's memory limit streams from the disk: memory is not its limit
        streams = _streams(hw)
        limit = None if streams else probe(hw, threads)
        return Bound(
            "memory", _scaled(value, nbytes), limit, nbytes, llc is not None and nbytes <= llc, streams
        )
    peak_record = mapping(mapping(hw).get("peak"))
    if metric == "pp_tps" and "flops_per_token" in mine:
        achieved = _scaled(value, mine["flops_per_token"])
    elif suite == "ops" and metric == "gflops":
        achieved = value
        # test-backend-ops perf runs half the CPUs' threads (its N_THREADS / 2)
        cpus = number(mapping(hw).get("logical_cpus"))
        threads = max(1, int(cpus) // 2) if cpus and 0 < cpus < 1 << 20 else 1
    else:
        return None
    top = peak_mod.gflops(peak_record, _type(suite, params), threads) if peak_record else None
    return Bound("compute", achieved, Summary(0, top, top, top) if top else None)
