"""`variant matrix`, `variant matrix run`, `variant ci generate` and `variant results`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..build import pipeline
from ..ci import local, matrix, runners, workflow
from ..layout import Layout
from ..results import exchange
from ..store import results
from . import app


def _config(layout: Layout) -> runners.Config:
    return runners.load(layout.runners_file, layout.toolchains_dir)


FILTER_HELP = "GLOB (variant name) or KEY=GLOB, KEY one of variant, runner, toolchain, source; repeatable."


@app.cli.group("matrix", invoke_without_command=True)
@click.option("--filter", "filters", multiple=True, help=FILTER_HELP)
@click.option("--json", "as_json", is_flag=True, help="GitHub Actions' matrix form: {include: [...]}.")
@click.pass_context
def matrix_cmd(ctx: click.Context, filters: tuple[str, ...], as_json: bool) -> None:
    """The build cells (variant x runner), grouped into jobs by runner, source and toolchain."""
    if ctx.invoked_subcommand is not None:
        return
    layout = app.layout(ctx)
    config = _config(layout)
    if as_json:
        click.echo(workflow.matrix_json(layout, config, filters))
        return
    jobs = matrix.jobs(layout, config, filters)
    click.echo("| job | runs-on | image | variants | also builds |")
    click.echo("|---|---|---|---|---|")
    for j in jobs:
        extra = [b for b in j.build if b not in {c.name for c in j.cells}]
        click.echo(
            f"| {j.name} | {', '.join(j.runner.runs_on)} | {j.runner.image} | "
            f"{' '.join(c.name for c in j.cells)} | {' '.join(extra) or '-'} |"
        )
    cells = sum(len(j.cells) for j in jobs)
    click.echo(f"\n{cells} cell(s) in {len(jobs)} job(s) on {len({j.runner.name for j in jobs})} runner(s)")


@matrix_cmd.command("run")
@click.option("--filter", "filters", multiple=True, help=FILTER_HELP)
@click.option("--runner", help="Whose jobs to run (default: the first runner of runners.toml).")
@click.option("-j", "--jobs", "compile_jobs", type=click.IntRange(min=1), help="Parallel compile jobs.")
@click.option("--continue", "keep_going", is_flag=True, help="Go on after a failed cell.")
@click.option("--offline", is_flag=True, help="Use the sources' pinned PyPI sdists, not git.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def matrix_run(
    ctx: click.Context,
    filters: tuple[str, ...],
    runner: str | None,
    compile_jobs: int | None,
    keep_going: bool,
    offline: bool,
    as_json: bool,
) -> None:
    """Run one runner's jobs here, in order: build, smoke, a short bench; a summary table."""
    layout = app.layout(ctx)
    config = _config(layout)
    jobs = matrix.runner_jobs(layout, config, filters, runner)
    opts = pipeline.Options(offline=offline, jobs=compile_jobs)
    rows = local.run(layout, config, jobs, opts, keep_going, app.say)
    if as_json:
        app.emit_json([r.as_dict() for r in rows])
    else:
        click.echo(local.table(rows))
    if any(r.failed for r in rows):
        sys.exit(1)


@app.cli.group()
def ci() -> None:
    """GitHub Actions workflows for the catalogue."""


@ci.command("generate")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: .github/workflows/.")
@click.option("--tests", is_flag=True, help="This project's own tests workflow (make setup, lint, test).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the file is not what would be written.")
@click.pass_context
def ci_generate(ctx: click.Context, out: Path | None, tests: bool, check: bool) -> None:
    """Write the variant-matrix workflow (or, with --tests, the project's tests workflow)."""
    layout = app.layout(ctx)
    config = _config(layout)
    text = workflow.tests_workflow(config) if tests else workflow.variants_workflow(layout, config)
    path = out or layout.root / ".github" / "workflows" / ("tests.yml" if tests else "variants.yml")
    if check:
        current = path.read_text() if path.is_file() else None
        if current != text:
            click.echo(f"{path}: stale; run `variant ci generate{' --tests' if tests else ''}`", err=True)
            sys.exit(1)
        click.echo(f"{path}: up to date")
        return
    changed = workflow.write(path, text)
    click.echo(f"{path}: {'written' if changed else 'unchanged'}")


@app.cli.group("results")
def results_cmd() -> None:
    """Stored results: move runs between machines, list them, merge them into one report."""


@results_cmd.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_ids", type=int, multiple=True, help="Only this run id; repeatable.")
@click.pass_context
def results_export(ctx: click.Context, file: Path, run_ids: tuple[int, ...]) -> None:
    """Write runs, with every measurement, to FILE (JSON)."""
    layout = app.layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        n = exchange.export(con, file, list(run_ids))
    app.say(f"exported {n} run(s) to {file}")


@results_cmd.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def results_import(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Add the runs of exported FILEs that are not here yet (same run id: skipped)."""
    layout = app.layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        for r in exchange.import_files(con, list(files)):
            click.echo(
                f"{r.file}: {r.runs} run(s) imported ({r.measurements} measurements), "
                f"{r.skipped} already here"
            )


@results_cmd.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def results_list(ctx: click.Context, as_json: bool) -> None:
    """Every stored run: local id, run id, start, host, variants."""
    layout = app.layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        rows = exchange.run_list(con)
    if as_json:
        app.emit_json(rows)
        return
    if not rows:
        app.say(f"no runs stored in {layout.home / 'results.sqlite'} yet (variant bench stores them)")
    for r in rows:
        host = r["host"].split(" | ")[0]
        click.echo(f"{r['id']:>4}  {r['uuid'][:12]}  {r['started']}  {host}  {' '.join(r['variants'])}")


@results_cmd.command("summary")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.pass_context
def results_summary(ctx: click.Context, fmt: str) -> None:
    """Every run's comparison tables (each variant against the run's first), as `variant compare`."""
    layout = app.layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        click.echo(exchange.summary(con, fmt), nl=False)
