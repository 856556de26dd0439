"""`variant patch ...`: the patch series under patches/ and their round trip to upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..build import seriescheck
from ..errors import BuildError, UserError
from ..patch import edit as edit_mod
from ..patch import rebase as rebase_mod
from ..patch import refresh as refresh_mod
from ..patch import revisions
from ..patch import series as patches
from ..patch import status as status_mod
from ..pr import prdoc
from ..tomlfile import suggest
from . import app

SOURCE = click.option("--source", default="llama.cpp", show_default=True, help="Which base's patches.")
OFFLINE = click.option("--offline", is_flag=True, help="Use the source's pinned PyPI sdist, not git.")


@app.cli.group()
def patch() -> None:
    """Patch series under patches/: edit, refresh, rebase, check, export."""


@patch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def patch_list(ctx: click.Context, as_json: bool) -> None:
    """Every series with its status, upstream link and patches."""
    layout = app.layout(ctx)
    rows: list[dict[str, Any]] = []
    for name in patches.available(layout.patches_dir):
        h = patches.header(layout.patches_dir, name, referenced_from=layout.patches_dir, key=name)
        ports = patches.ports(h.dir)
        by_base = {b: [patches.pin_key(h.dir, f) for f in patches.patch_files(h.dir, b)] for b in h.bases()}
        rows.append(
            {
                "series": name,
                "status": h.status,
                "upstream": h.upstream,
                "pr": h.pr,
                "description": h.description,
                "bench": list(h.bench),
                "bases": [b for b in h.bases() if b != patches.TOP],
                "patches": by_base if ports else {},
                "revisions": [r.label for r in revisions.recorded(layout, name, "llama.cpp")],
            }
        )
    if as_json:
        app.emit_json(rows)
        return
    for r in rows:
        pr = f"  {r['pr']}" if r["pr"] else ""
        revs = f"  ({', '.join(r['revisions'])})" if r["revisions"] else ""
        click.echo(f"{r['series']}  [{r['status']}]{pr}{revs}  {r['description']}")
        click.echo(f"    bases: {', '.join(r['bases']) or 'any'}")
        for base, files in r["patches"].items():
            for f in files:
                click.echo(f"    {base if base != patches.TOP else 'any'}: {f}")


def _series_dir(ctx: click.Context, series: str) -> Path:
    layout = app.layout(ctx)
    sdir = layout.patches_dir / series
    if not (sdir / "series.toml").is_file():
        raise UserError(
            f'unknown patch series "{series}"' + suggest(series, patches.available(layout.patches_dir))
        )
    return sdir


@patch.command("pin")
@click.argument("series")
@click.pass_context
def patch_pin(ctx: click.Context, series: str) -> None:
    """Record the sha256 of every patch of SERIES, every port, in its series.toml."""
    for fname, sha in patches.pin(_series_dir(ctx, series)).items():
        click.echo(f"{fname} {sha}")


@patch.command("edit")
@click.argument("series")
@SOURCE
@OFFLINE
@click.option("--reset", is_flag=True, help="Discard the branch and start again from the patch files.")
@click.pass_context
def patch_edit(ctx: click.Context, series: str, source: str, offline: bool, reset: bool) -> None:
    """A worktree with SERIES applied as commits, to edit with plain git; prints its path."""
    info = edit_mod.edit(app.layout(ctx), series, source, offline=offline, reset=reset, say=app.say)
    ws = info.workspace
    verb = "made" if info.created else "exists"
    app.say(f"{ws.branch}: {info.commits} commit(s) on {info.base[:12]} ({verb}); edit, commit, then refresh")
    click.echo(str(ws.worktree))


@patch.command("refresh")
@click.argument("series")
@SOURCE
@click.pass_context
def patch_refresh(ctx: click.Context, series: str, source: str) -> None:
    """Write the edit branch's commits back as SERIES' patch files and re-pin them."""
    ch = refresh_mod.refresh(app.layout(ctx), series, source, app.say)
    for label, names in (("added", ch.added), ("changed", ch.changed), ("removed", ch.removed)):
        for n in names:
            click.echo(f"{label:<9} {n}")
    if not ch.any:
        click.echo(f"unchanged ({len(ch.unchanged)} patch file(s))")


@patch.command("rebase")
@click.argument("series")
@click.option("--onto", required=True, help="A commit or ref of the source, or another source's name.")
@SOURCE
@OFFLINE
@click.pass_context
def patch_rebase(ctx: click.Context, series: str, onto: str, source: str, offline: bool) -> None:
    """Move SERIES onto another base; drop what upstream already has; conflicts exit 2."""
    res = rebase_mod.rebase(app.layout(ctx), series, source, onto, offline=offline, say=app.say)
    click.echo(f"rebased {series} from {res.old_base[:12]} onto {res.new_base[:12]}")
    for u in res.upstreamed:
        where = f"{u.commit[:12]} {u.upstream_subject!r}" if u.commit else "(no single commit found)"
        click.echo(f"upstreamed  {u.subject}  <- {where} [{u.how}]; dropped from the series")
    for k in res.kept:
        click.echo(f"kept        {k}")
    for n in res.changes.removed:
        click.echo(f"removed     {n}")


@patch.command("diff")
@click.argument("series")
@click.argument("old", required=False)
@click.argument("new", required=False)
@SOURCE
@OFFLINE
@click.pass_context
def patch_diff(
    ctx: click.Context, series: str, old: str | None, new: str | None, source: str, offline: bool
) -> None:
    """`git range-diff` between revisions (vN, or "current"); default: the latest one vs current."""
    layout = app.layout(ctx)
    _series_dir(ctx, series)
    recorded = revisions.recorded(layout, series, source)
    if old is None:
        if not recorded:
            raise UserError(f"series {series} has no revisions yet; `variant patch export` records v1")
        old = recorded[-1].label
    a = revisions.find(layout, series, source, old, offline=offline, say=app.say)
    b = revisions.find(layout, series, source, new or revisions.CURRENT, offline=offline, say=app.say)
    click.echo(revisions.range_diff(layout, series, source, a, b, app.say), nl=False)


@patch.command("check")
@click.argument("series")
@SOURCE
@OFFLINE
@click.option("--variant", help="Build with this variant's configuration (default: the cheapest).")
@click.option("-j", "--jobs", type=int, help="Ninja's parallel jobs.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def patch_check(
    ctx: click.Context,
    series: str,
    source: str,
    offline: bool,
    variant: str | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Each patch in order: applies, builds, whitespace, clang-format, subject, body; exit 1 on a fail."""
    report = seriescheck.run(
        app.layout(ctx), series, source, variant=variant, offline=offline, jobs=jobs, say=app.say
    )
    if as_json:
        app.emit_json(report.as_dict())
    else:
        click.echo(f"series {series} on {report.base[:12]}, built as {report.variant}")
        click.echo(report.table())
    if not report.ok:
        bad = ", ".join(str(r.index) for r in report.results if not r.ok)
        raise BuildError(f"series {series}: patch(es) {bad} failed the check")


@patch.command("export")
@click.argument("series")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--branch", help="Branch name to push (default: the series' name).")
@click.option("--run", "run_ids", type=int, multiple=True, help="Stored run id(s) to use (default: newest).")
@click.option(
    "--no-tests",
    is_flag=True,
    help="Do not run smoke, nor test-backend-ops (ggml/ series), on the patched build.",
)
@SOURCE
@OFFLINE
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def patch_export(
    ctx: click.Context,
    series: str,
    out_dir: Path,
    branch: str | None,
    run_ids: tuple[int, ...],
    no_tests: bool,
    source: str,
    offline: bool,
    as_json: bool,
) -> None:
    """Patches with a cover letter, a branch to push, and PR.md with the stored numbers."""
    pkg, pr, used = prdoc.export(
        app.layout(ctx),
        series,
        source,
        out_dir,
        branch=branch,
        run_ids=list(run_ids) or None,
        tests=not no_tests,
        offline=offline,
        say=app.say,
    )
    data = {**pkg.as_dict(), "pr": str(pr), "runs": used}
    if as_json:
        app.emit_json(data)
        return
    for f in pkg.files:
        click.echo(str(f))
    click.echo(str(pr))
    app.say(f"{pkg.revision.label}; branch {pkg.branch}; push: {data['push']}")


@patch.command("status")
@click.argument("series")
@click.option("--pr", help="The pull request's URL.")
@click.option("--state", type=click.Choice(patches.STATUSES), help="Where the series stands upstream.")
@click.pass_context
def patch_status(ctx: click.Context, series: str, pr: str | None, state: str | None) -> None:
    """Show or set SERIES' upstream state and PR link (kept in series.toml)."""
    sdir = _series_dir(ctx, series)
    status_mod.set_status(sdir, state=state, pr=pr)
    s = patches.header(sdir.parent, series, referenced_from=sdir / "series.toml", key="status")
    click.echo(f"{series}  [{s.status}]  pr: {s.pr or '-'}  upstream: {s.upstream or '-'}")
