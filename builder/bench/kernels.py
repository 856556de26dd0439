"""Kernel suites: barrier (test-barrier), ops (test-backend-ops perf), e2e (llama-bench)."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import BuildError, UserError
from ..models import traffic
from ..models.installed import Installed, llama_bench_rows
from ..store.results import Measurement
from .case import Case, Context, Target, skipped, timeout

OPS_TYPES = ("f16", "q8_0", "q4_0", "tq2_0")
OPS_BATCHES = (1, 512)  # generation-like gemv and prompt-like gemm


def barrier_cases(ctx: Context, rounds: int = 20) -> list[Case]:
    def one(t: int) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            params = {"threads": t, "rounds": rounds}
            m = ctx.run(inst, [inst.tool("test-barrier"), str(t), str(rounds)])
            if m.returncode is None:
                return [
                    timeout("barrier", k, u, params, ctx, "lower")
                    for k, u in (("ns_per_node", "ns"), ("cpu_s", "s"))
                ]
            found = re.search(r"([\d.]+) nsec per-node", m.stdout + m.stderr)
            if not found:
                raise BuildError(f"{inst.name}: test-barrier printed no 'nsec per-node':\n{m.tail()}")
            return [
                Measurement("barrier", "ns_per_node", "ns", params, float(found[1]), better="lower"),
                Measurement("barrier", "cpu_s", "s", params, m.user_s + m.sys_s, better="lower"),
            ]

        return run

    return [Case("barrier", f"barrier t={t}", one(t)) for t in ctx.threads]


def parse_backend_ops_sql(text: str) -> list[dict[str, str]]:
    """Rows of `test-backend-ops --output sql` (its CSV output has no timing columns)."""
    rows = []
    for m in re.finditer(r"INSERT INTO test_backend_ops \(([^)]*)\) VALUES \((.*)\);", text):
        cols = [c.strip() for c in m[1].split(",")]
        vals = next(csv.reader(io.StringIO(m[2]), quotechar="'", skipinitialspace=True))
        rows.append(dict(zip(cols, vals, strict=False)))
    return rows


def ops_cases(ctx: Context) -> list[Case]:
    regex = f"type_a=({'|'.join(OPS_TYPES)}),type_b=f32,m=4096,n=({'|'.join(map(str, OPS_BATCHES))}),k=14336,"

    def run(inst: Installed) -> list[Measurement]:
        argv = [
            inst.tool("test-backend-ops"),
            "perf",
            "-b",
            "CPU",
            "-o",
            "MUL_MAT",
            "-p",
            regex,
            "--output",
            "sql",
        ]
        m = ctx.run(inst, argv)
        if m.returncode is None:
            return [timeout("ops", "gflops", "GFLOPS", {"op": "MUL_MAT"}, ctx, "higher")]
        out = []
        for row in parse_backend_ops_sql(m.stdout):
            if row.get("test_mode") != "perf" or row.get("supported") != "1":
                continue
            shape = dict(kv.split("=", 1) for kv in re.findall(r"(\w+=[^,\[]+)", row["op_params"]))
            params = {
                "op": row["op_name"],
                "type": shape.get("type_a"),
                "m": shape.get("m"),
                "n": shape.get("n"),
                "k": shape.get("k"),
            }
            out.append(
                Measurement("ops", "gflops", "GFLOPS", params, float(row["flops"]) / 1e9, better="higher")
            )
        if not out:
            raise BuildError(f"{inst.name}: test-backend-ops measured nothing for {regex}:\n{m.tail()}")
        return out

    return [Case("ops", "ops MUL_MAT", run)]


def llama_bench(
    ctx: Context, suite: str, target: Target, t: int, pp: bool,
    n_prompt: int = 128, n_gen: int = 32,
) -> Callable[[Installed], list[Measurement]]:  # fmt: skip
    """One llama-bench measurement: prompt (pp) or generation tokens/s at t threads, on target's model
    (its params name the model in the measurements)."""

    def run(inst: Installed) -> list[Measurement]:
        np_, ng = (n_prompt, 0) if pp else (0, n_gen)
        full = {**target.params, "threads": t, "n_prompt": np_, "n_gen": ng}
        metric = "pp_tps" if pp else "tg_tps"
        if why := ctx.why_skipped(inst, target):
            return [skipped(suite, metric, "tokens/s", full, why, "higher")]
        argv = [inst.tool("llama-bench"), "-m", str(target.path), "-p", str(np_), "-n", str(ng), "-t", str(t),
                "-r", "1", "-o", "json", *ctx.numa]  # fmt: skip
        m = ctx.run(inst, argv, target)
        if m.returncode is None:
            return [timeout(suite, metric, "tokens/s", full, ctx, "higher", target)]
        line = next(iter(llama_bench_rows(m.stdout)), None)
        if line is None:
            raise BuildError(f"{inst.name}: llama-bench printed no JSON result:\n{m.tail()}")
        out = [Measurement(suite, metric, "tokens/s", full, float(line["avg_ts"]), better="higher")]
        if not pp:
            # llama-bench warms up with one generated token before the measured ones.
            per_token = (m.user_s + m.sys_s) / (ng + 1)
            out.append(Measurement(suite, "cpu_s_per_token", "s/token", full, per_token, better="lower"))
        return out + _facts(ctx, suite, inst, target, full, np_, ng)

    return run


@functools.cache
def _traffic(files: tuple[Path, ...], stamp: tuple[tuple[int, int], ...]) -> traffic.Traffic:
    """A model's traffic, read once per file version (stamp: size and mtime of each part)."""
    return traffic.of(files)


def _facts(
    ctx: Context, suite: str, inst: Installed, target: Target, full: dict[str, object], n_prompt: int,
    n_gen: int,
) -> list[Measurement]:  # fmt: skip
    """The case's facts (results/share.py, roofline.py): the bytes a token reads and its FLOPs.

    A generated token reads every weight and the KV cells (at inst's source's padding); a prompt
    token a 1/n_prompt share of the weights, which the batch reads once.
    """
    try:
        stamp = tuple((s.st_size, s.st_mtime_ns) for s in (f.stat() for f in target.files))
        tr = _traffic(target.files, stamp)
    except (OSError, UserError) as exc:
        ctx.say(f"{inst.name}: the bytes a token reads are not counted: {exc}")
        return []
    if not n_gen:  # a prompt case
        nbytes, flops = tr.weights / max(n_prompt, 1), tr.prompt_flops(n_prompt)
        how = f"{tr.how}; the weights read once per batch of {n_prompt}"
    else:
        padding = ctx.kv_padding(inst)
        nbytes, flops = float(tr.per_token(n_prompt, n_gen, padding)), 2.0 * tr.matmul_elements
        how = f"{tr.how}; KV {tr.kv_per_cell} B per cell, padded to {padding}"
    return [Measurement(suite, "bytes_per_token", "B", full, nbytes, how, "lower"),
            Measurement(suite, "flops_per_token", "FLOP", full, flops, how, "lower")]  # fmt: skip


def e2e_cases(ctx: Context) -> list[Case]:
    """The wide model in each --type, or each of the user's models: pp and tg at each thread count."""
    cases = []
    for type_ in ctx.types if not ctx.own else (None,):
        for target in ctx.targets(type_):
            name = target.params["model"]
            for t in ctx.threads:
                for pp in (True, False):
                    label = f"e2e {name} {'pp' if pp else 'tg'} t={t}"
                    cases.append(Case("e2e", label, llama_bench(ctx, "e2e", target, t, pp)))
    return cases
