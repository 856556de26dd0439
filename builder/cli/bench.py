"""`variant bench`, `compare` and `report`: measuring the installed variants and what the numbers say."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from ..bench import calibrate, environment, profiles
from ..bench import runner as bench_mod
from ..bench.suites import SUITES
from ..errors import UserError
from ..models import models
from ..results import compare as compare_mod
from ..results import report as report_mod
from ..results import tables
from ..results.cases import identities, model_filter
from ..store import results
from . import app
from .options import memory_max_option, own_models, parse_load_modes, parse_threads, recorded


def _types(value: str) -> tuple[str, ...]:
    types = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    bad = [t for t in types if t not in models.TYPES]
    if bad or not types:
        raise UserError(f'--type: "{value}": expected weight types among {", ".join(models.TYPES)}')
    return types


@app.cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--vs", "baseline", help="The baseline variant (run first in every repetition).")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help=f"One of {', '.join(SUITES)}; repeatable. "
    "Default: the suites the variants' patch series declare, else all.",
)
@click.option(
    "--reps",
    default="5",
    show_default=True,
    help="Repetitions of each case, or 'auto': repeat until the speedup's spread is within ±3% "
    f"(or a cap); {calibrate.REPS_SYNTAX}.",
)
@click.option(
    "--model",
    "model_refs",
    multiple=True,
    metavar="[LABEL=]PATH|LABEL",
    help="e2e, load and faults: run on this GGUF model (a split model: any of its parts) instead of the "
    "generated one; LABEL names it, or a label of catalogue.toml's [models]. Repeatable.",
)
@click.option(
    "--drop-caches",
    is_flag=True,
    help="load suite: empty the whole page cache before each cold load (root), instead of "
    "posix_fadvise(DONTNEED) on the model's files; the results say which.",
)
@click.option(
    "--allow-swap",
    is_flag=True,
    help="Run resident load modes (none, dio, uring, mlock) even for a model larger than the memory "
    "available.",
)
@click.option(
    "--threads",
    help="Comma-separated thread counts (default: from the topology: 1, one NUMA node's cores, all cores, "
    "all CPUs; barrier and formats also 2x the CPUs).",
)
@click.option(
    "--profile", "profile_name", default="default", show_default=True, help="A table of profiles.toml."
)
@click.option(
    "--timeout", type=float, help="Seconds before a benchmark process is killed (default: the profile's)."
)
@memory_max_option(
    "Run every benchmark process in a memory cgroup of this size, page cache included (e.g. 2G; over "
    "the profile's memory-max): a larger model streams from disk. Needs root and a memory controller."
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a variable for every benchmark process (over the profile's env); repeatable. Recorded with "
    "the run. The caller's own OMP_*, GGML_*, LD_PRELOAD... are not passed.",
)
@click.option(
    "--load-mode",
    "load_modes",
    help="load and faults suites: comma-separated llama.cpp load modes (mmap, none, dio, ...); "
    "default: llama.cpp's own default. 'fio' adds the disk's O_DIRECT read limit to the load suite.",
)
@click.option(
    "--layers", type=click.IntRange(min=1), help="Layers of the wide model (default 4; 20 is about 1 GiB)."
)
@click.option(
    "--type",
    "types",
    default="q8_0",
    show_default=True,
    help=f"e2e: the wide model's weight types, comma-separated ({', '.join(models.TYPES)}).",
)
@click.option(
    "--recipe",
    help="formats suite: the model recipe (tmac-i4, bitnet-ternary, ik-iq4k; default: the first fork's).",
)
@click.option(
    "--no-bandwidth",
    "no_bandwidth",
    is_flag=True,
    help="Skip the memory bandwidth probe (tg rows then show GB/s without their share of the limit).",
)
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.pass_context
def bench(
    ctx: click.Context,
    names: tuple[str, ...],
    baseline: str | None,
    suites: tuple[str, ...],
    reps: str,
    model_refs: tuple[str, ...],
    allow_swap: bool,
    drop_caches: bool,
    threads: str | None,
    profile_name: str,
    timeout: float | None,
    memory_max: int | None,
    env: tuple[str, ...],
    load_modes: str | None,
    layers: int | None,
    types: str,
    recipe: str | None,
    no_bandwidth: bool,
    fmt: str,
) -> None:
    """Benchmark installed variants, interleaved, into .variant/results.sqlite; print the comparison."""
    layout = app.layout(ctx)
    prof = profiles.load(layout.root, profile_name)
    if timeout is not None:
        prof = dataclasses.replace(prof, timeout=timeout, timeout_given=True)
    if memory_max is not None:
        prof = dataclasses.replace(prof, memory_max=memory_max)
    if env:
        merged = {**dict(prof.env), **environment.parse(env)}
        prof = dataclasses.replace(prof, env=tuple(sorted(merged.items())))
    # the whole command line, global options (--root) included: PR.md prints it to reproduce the run
    mine = own_models(layout, model_refs)
    command = recorded(sys.argv[1:], mine) if "bench" in sys.argv[1:] else "variant bench"
    calibrated: list[str] = []
    run_id = bench_mod.run(
        layout,
        list(names),
        baseline=baseline,
        suites=suites,
        reps=calibrate.parse_reps(reps),
        threads=parse_threads(threads),
        profile=prof,
        command=command,
        say=app.say,
        load_modes=parse_load_modes(load_modes),
        layers=layers,
        recipe=recipe,
        types=_types(types),
        own=mine,
        allow_swap=allow_swap,
        drop_caches=drop_caches,
        calibrated=calibrated,
        probe_bandwidth=not no_bandwidth,
    )
    base = baseline or names[0]
    others = [n for n in names if n != base]
    with results.connect(layout.home / "results.sqlite") as con:
        if not others:
            click.echo(tables.render_single(compare_mod.single_rows(con, base, run_id), base, fmt))
        for other in others:
            _, rows = compare_mod.pair_rows(con, base, other, None, run_id)
            click.echo(tables.render(rows, base, other, fmt))
    if calibrated and fmt == "md":  # --reps auto: how many pairs each case took, and why it stopped
        click.echo("\n--reps auto:\n" + "\n".join(f"- {line}" for line in calibrated))
    app.say(f"stored as run {run_id} in {layout.home / 'results.sqlite'}")


MODEL_FILTER = click.option(
    "--model",
    "models",
    multiple=True,
    metavar="LABEL|IDENTITY",
    help="Only the cases of this model: its label, or 6 or more hex digits its identity starts with. "
    "Repeatable.",
)


@app.cli.command("compare")
@click.argument("baseline")
@click.argument("candidate")
@click.option("--suite", help="Only this suite.")
@click.option("--run", "run_id", type=int, help="A stored run id (default: the newest that measured both).")
@MODEL_FILTER
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.pass_context
def compare_cmd(
    ctx: click.Context, baseline: str, candidate: str, suite: str | None, run_id: int | None,
    models: tuple[str, ...], fmt: str,
) -> None:  # fmt: skip
    """Baseline vs candidate from stored results, without re-running anything."""
    layout = app.layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        run, rows = compare_mod.pair_rows(con, baseline, candidate, suite, run_id)
    # VARIANT@RUN entries: the rows of those runs
    runs = {r if r is not None else run for r in (compare_mod.entry(e)[2] for e in (baseline, candidate))}
    variants = compare_mod.variants_of([baseline, candidate])
    with results.connect(layout.home / "results.sqlite") as con:  # every label the runs gave a model
        labelled = [json.loads(r["params"]) for n in runs for r in results.rows(con, n, variants, suite)]
    keep = model_filter(identities(models, labelled), [r.params for r in rows], runs)
    rows = [r for r in rows if keep(r.params)]
    click.echo(tables.render(rows, baseline, candidate, fmt))


@app.cli.command("report")
@click.argument("names", nargs=-1)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--run", "run_id", type=int, help="A stored run id (default: the newest that measured all).")
@click.option(
    "--questions",
    "by_question",
    is_flag=True,
    help="One section per question of questions.toml (NAMES: which; default all), each from its newest run.",
)
@MODEL_FILTER
@click.pass_context
def report_cmd(
    ctx: click.Context, names: tuple[str, ...], out_dir: Path, run_id: int | None, by_question: bool,
    models: tuple[str, ...],
) -> None:  # fmt: skip
    """Markdown report and one PNG plot per suite; the first NAME (VARIANT[:FORMAT]) is the baseline."""
    layout = app.layout(ctx)
    if by_question:
        if run_id is not None:
            raise UserError("--run: with --questions each question reads its own newest run")
        if models:
            raise UserError("--model: with --questions each question reports every case of its own run")
        path = report_mod.write_questions(layout, list(names), out_dir, app.say)
    elif not names:
        raise UserError("report: name the variants to report (the first is the baseline), or use --questions")
    else:
        path = report_mod.write(layout, list(names), out_dir, app.say, run_id, models)
    click.echo(str(path))
