"""`variant profile`: a bench case under perf or uftrace, as flame graphs and where-the-time-went tables."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..bench.suites import SUITES
from ..errors import UserError
from ..profile import groups, session, write
from ..profile.record import MAIN
from . import app
from .options import memory_max_option, own_models, recorded


@app.cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--vs", "baseline", help="Profile this variant too, the same case, and compare (NAME vs it).")
@click.option(
    "--tool",
    type=click.Choice(["perf", "uftrace", "bpf"]),
    help="The profiler (default: the one the variant is built for, its `instrument`). bpf: off-CPU "
    "stacks, block I/O latency and the model's page-cache traffic (root, BTF, libbpf-tools, bpftrace).",
)
@click.option("--suite", default="e2e", show_default=True, help=f"A bench suite: {', '.join(SUITES)}.")
@click.option(
    "--case",
    "case_words",
    default="",
    help="Words of the case's label, e.g. 'pp' or 'tg' (default: the suite's first generation case).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="this machine's CPUs",
    help="Threads of the case.",
)
@click.option("--type", "type_", default="q8_0", show_default=True, help="The e2e suite's weight type.")
@click.option(
    "--model",
    "model_ref",
    metavar="[LABEL=]PATH|LABEL",
    help="e2e, load and faults: profile on this GGUF model instead of the generated one (see bench --model).",
)
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds per program."
)
@memory_max_option(
    "Run the case in a memory cgroup of this size, page cache included (e.g. 2G): a larger model "
    "streams from disk (see bench --memory-max)."
)
@click.option("--out", type=click.Path(file_okay=False), help="Also copy the files here (not the raw data).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the run, its folders, and each group's weight and share."
)
@click.pass_context
def profile(
    ctx: click.Context, names: tuple[str, ...], baseline: str | None, tool: str | None, suite: str,
    case_words: str, threads: int, type_: str, model_ref: str | None, timeout: float,
    memory_max: int | None, out: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Profile one bench case of each variant: flame graphs, top functions, time per group.

    Stored as a run beside the benchmark results (.variant/profiles/<run id>/), which `variant report`
    shows. Software events only on machines without hardware counters: cpu-clock, page faults,
    context switches.
    """
    layout = app.layout(ctx)
    if baseline is not None and len(names) != 1:
        raise UserError(f"--vs {baseline} compares one variant with it; got {len(names)}: {' '.join(names)}")
    order = [baseline, *names] if baseline else list(names)
    mine = own_models(layout, (model_ref,)) if model_ref else ()
    command = recorded(sys.argv[1:], mine) if "profile" in sys.argv[1:] else "variant profile"
    done = session.run(
        layout, order, vs=baseline is not None, tool=tool, suite=suite, wanted=tuple(case_words.split()),
        threads=threads, type_=type_, timeout=timeout, out=Path(out).resolve() if out else None,
        command=command, say=app.say, own=mine[0] if mine else None, memory_max=memory_max,
    )  # fmt: skip
    if as_json:
        app.emit_json(
            {
                "run": done.run_id,
                "folder": str(done.folder),
                "profiles": [
                    {
                        "variant": p.variant,
                        "case": p.case,
                        "tool": p.tool,
                        "folder": str(p.folder),
                        "event": MAIN[p.tool],
                        "unit": p.main.unit,
                        "total": p.main.total,
                        "groups": (weights := groups.shares(p.main)),  # in unit
                        "shares": {g: w / p.main.total for g, w in weights.items()},
                        "events": {e: q.total for e, q in p.events.items()},
                    }
                    for p in done.profiled
                ],
                "compared": [str(f) for f in done.compared],
            }
        )
        return
    named = [(p.variant, p.main) for p in done.profiled]
    click.echo("\n" + write.WHAT[done.profiled[0].tool])
    click.echo(f"\n{done.profiled[-1].case}, {MAIN[done.profiled[0].tool]} (run {done.run_id}):\n")
    click.echo(write.groups_table(named))
    for p in done.profiled:
        click.echo(f"{p.variant}: {p.folder}/flame.svg, groups.md, top.md")
    for f in done.compared:
        click.echo(str(f))
