"""The suites `variant bench` knows, registered once: what each measures, with which programs, how.

barrier  ns per graph node of test-barrier at each thread count
ops      GFLOPS of MUL_MAT per weight type and shape (test-backend-ops perf)
e2e      prompt and generation tokens/s, CPU seconds per generated token (llama-bench)
formats  the same, on one set of weights in each format the run's kernels need (a fork's model
         recipe: T-MAC i4 vs q4_0 vs f16, BitNet tl2 vs i2_s vs f32, ik iq4_k vs f16)
load     model load time with a cold page cache (posix_fadvise DONTNEED) and warm, per load mode;
         the pseudo-mode "fio" reads the same file with fio (O_DIRECT, io_uring, 32 x 1 MiB in
         flight): the disk's limit, measured in the same run
faults   generation tokens/s and major faults per token at the largest thread count, minor/major
         page faults, peak RSS, CPU time, peak AnonHugePages (rusage, smaps_rollup),
         per load mode
load and faults also record what the device under the model and the page cache did meanwhile
(observe.py: read MB, MB/s and IOPS, average request, await, utilisation; pgpgin, faults, reclaim,
THP; CPUs busy)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import formats, kernels, loading
from .case import Case, Context


@dataclass(frozen=True)
class Suite:
    name: str
    measures: str
    programs: tuple[str, ...]  # the suite runs with any one of these (the first is preferred)
    make: Callable[[Context], list[Case]]
    oversubscribe: bool = False  # default threads also 2x the CPUs (host/topology.default_threads)
    default: bool = True  # runs when no --suite names it (formats needs a recipe: only when asked)


# The word of a case's label that measures a metric, where a suite's cases measure different ones
# (bisect and history run only that case).
METRIC_CASES = {("e2e", "pp_tps"): "pp", ("e2e", "tg_tps"): "tg", ("e2e", "cpu_s_per_token"): "tg",
                ("formats", "pp_tps"): "pp", ("formats", "tg_tps"): "tg"}  # fmt: skip

# What each suite whose figures are fixed measures (load and faults add the disk's and the page cache's
# counters, which depend on the machine): a metric named for bisect or history is checked before a build.
METRICS = {
    "barrier": ("ns_per_node", "cpu_s"),
    "ops": ("gflops",),
    "e2e": ("pp_tps", "tg_tps", "cpu_s_per_token"),
    "formats": ("pp_tps", "tg_tps", "cpu_s_per_token"),
}

# The suites that run on a user's models when --model gives them (the others have their own inputs).
MODEL_SUITES = ("e2e", "load", "faults")

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("barrier", "ns per graph node, CPU seconds", ("test-barrier",), kernels.barrier_cases, True),
        Suite("ops", "GFLOPS of MUL_MAT per type and shape", ("test-backend-ops",), kernels.ops_cases),
        Suite("e2e", "prompt and generation tokens/s, CPU s per token", ("llama-bench",), kernels.e2e_cases),
        Suite("formats", "tokens/s per model format of the same weights", ("llama-bench",),
              formats.formats_cases, True, False),
        Suite("load", "load time and MB/s, cold and warm, peak RSS", ("llama-completion", "llama-simple"),
              loading.load_cases),
        Suite("faults", "page faults, peak RSS, CPU time, huge pages", ("llama-completion", "llama-simple"),
              loading.faults_cases),
    )
}  # fmt: skip
