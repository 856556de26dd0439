"""`variant build`."""

from __future__ import annotations

import click

from ..build import pipeline as build_mod
from ..plan import plan as plan_mod
from . import app


@app.cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--offline", is_flag=True, help="Do not contact git remotes; use the pinned PyPI sdist.")
@click.option("--force", is_flag=True, help="Rebuild even if the installed variant is up to date.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel compile jobs (default: Ninja's).")
@click.option(
    "--lock-timeout",
    type=float,
    envvar="VARIANT_LOCK_TIMEOUT",
    help="Seconds to wait for another build of the same variant (default: wait).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON.")
@click.pass_context
def build(
    ctx: click.Context,
    names: tuple[str, ...],
    offline: bool,
    force: bool,
    jobs: int | None,
    lock_timeout: float | None,
    as_json: bool,
) -> None:
    """Check out, patch, configure, build, verify and install variants to dist/."""
    layout = app.layout(ctx)
    # Resolve every name first: a typo in the third name must not cost two builds.
    for name in names:
        plan_mod.make(layout, name)
    opts = build_mod.Options(offline=offline, force=force, jobs=jobs, lock_timeout=lock_timeout)
    results = []
    for name in names:
        out = build_mod.build(layout, name, opts, app.say)
        results.append(out)
        name = out.name  # NAME@VERSION as the build spells it
        if out.action == "up to date":
            app.say(f"{name}: up to date ({out.path}); nothing to do")
        else:
            m = out.manifest
            cc = m.get("ccache") or {}
            app.say(
                f"{name}: built in {m['build_seconds']} s (ccache {cc.get('hits', 0)} hits, "
                f"{cc.get('misses', 0)} misses; origin {m['source']['origin']}) -> {out.path}"
            )
    if as_json:
        app.emit_json([r.manifest for r in results])
    else:
        for r in results:
            for b in r.manifest.get("binaries", []):
                click.echo(str(r.path / "bin" / b["name"]))
