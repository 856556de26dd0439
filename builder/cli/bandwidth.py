"""`variant bandwidth`: the machine's memory bandwidth and arithmetic peak, the limits of the tables."""

from __future__ import annotations

import json

import click

from ..errors import UserError
from ..host import bandwidth, peak, topology
from . import app
from .options import parse_threads


@app.cli.command("bandwidth")
@click.option(
    "--threads", help="Comma-separated thread counts (default: 1 and every CPU this process may use)."
)
@click.option("--cpus", default="", help="Run on these CPUs (taskset -c list), as a profile's cpus does.")
@click.option(
    "--again", is_flag=True, help="Measure again, replacing the stored probes of these thread counts."
)
@click.option(
    "--reps", type=click.IntRange(min=3, max=100), default=bandwidth.DEFAULT_REPS, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.pass_context
def bandwidth_cmd(
    ctx: click.Context, threads: str | None, cpus: str, again: bool, reps: int, as_json: bool
) -> None:
    """Probe the memory read bandwidth (and STREAM triad) per thread count; stored once per machine.

    `variant bench` runs the same probe for its tg cases' thread counts and keeps the figures with the
    run, so every generation row shows its share of them.
    """
    layout = app.layout(ctx)
    try:
        usable = len(topology.parse_cpulist(cpus)) if cpus else len(topology.topology().cpus)
    except ValueError:
        raise UserError(f'--cpus "{cpus}": expected a CPU list like 0-3,8 (taskset -c)') from None
    counts = parse_threads(threads) or tuple(dict.fromkeys((1, usable)))
    found = bandwidth.probes(layout.home, counts, app.say, cpus=cpus, again=again, reps=reps)
    record = {**bandwidth.record(found), "peak": peak.estimate()}
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    llc = record["bandwidth"]["llc_bytes"]
    click.echo("| threads | read GB/s | triad GB/s | buffer | probed |")
    click.echo("|---:|---:|---:|---:|---|")
    for p in found:
        f = p.figures()
        cells = [f"{f[k]['median']:.1f} [{f[k]['min']:.1f}, {f[k]['max']:.1f}]" for k in ("read", "triad")]
        click.echo(f"| {p.threads} | {cells[0]} | {cells[1]} | {p.buffer_bytes >> 20} MiB | {p.when} |")
    click.echo("\nA tg row's share (bench, compare, report) is of its thread count's best read.")
    if llc:
        click.echo(
            f'last-level cache: {llc >> 20} MiB (a row whose token bytes fit in it says "fits in cache")'
        )
    if est := record["peak"]:
        rates = ", ".join(f"{peak.gflops(est, t, None):.0f} {t}" for t in ("f32", "f16", "bf16"))
        click.echo(f"arithmetic peak (estimate): {est['cores']} cores x {est['ghz']} GHz: {rates}, "
                   f"{peak.gflops(est, 'q8_0', None):.0f} int8 GFLOPS")  # fmt: skip
        click.echo(f"  ({est['isa']}; assumes {est['assumes']})")
