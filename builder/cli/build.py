"""`variant build`."""

from __future__ import annotations

import shlex
import shutil
import sys

import click

from ..build import check as check_mod
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
@click.option(
    "--check",
    type=click.Choice(check_mod.MODES),
    is_flag=False,
    flag_value="empty",
    default=None,
    help="Build each variant again in a scratch catalogue at another path and compare every published "
    "file's sha256 (exit 1 when one differs): with an empty compile cache (--check, --check=empty), "
    "or with the catalogue's local and remote caches (--check=cache). Give it after the names, "
    "or with its value (--check=empty): before them it would take the first name as its value.",
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
    check: str | None,
    as_json: bool,
) -> None:
    """Check out, patch, configure, build, verify and install variants to dist/."""
    layout = app.layout(ctx)
    # Resolve every name first: a typo in the third name must not cost two builds.
    for name in names:
        plan_mod.make(layout, name)
    opts = build_mod.Options(offline=offline, force=force, jobs=jobs, lock_timeout=lock_timeout)
    if check is not None:
        checked = [check_mod.check(layout, name, check, opts, app.say) for name in names]
        if as_json:
            app.emit_json([_checked(c) for c in checked])
        for c in checked:
            _say_checked(c)
        if any(c.differences for c in checked):
            sys.exit(1)  # as doctor does for a missing tool: the check ran, and found a difference
        return
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


def _checked(c: check_mod.Outcome) -> dict[str, object]:
    return {
        "variant": c.name,
        "mode": c.mode,
        "files": c.files,
        "reproducible": not c.differences,
        "verdict": c.verdict,
        "differences": [
            {"file": d.file, "first": d.section, "rebuilt": str(d.kept) if d.kept else None}
            for d in c.differences
        ],
        "rebuild_seconds": c.seconds,
        "rebuild_ccache": {k: v for k, v in c.ccache.items() if k in ("hits", "misses")},
    }


def _say_checked(c: check_mod.Outcome) -> None:
    cache = c.ccache
    how = f"rebuilt in {c.seconds} s, ccache {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses"
    if not c.differences:
        app.say(f"{c.name}: reproducible: all {c.files} published files identical ({how})")
        return
    app.say(f"{c.name}: NOT reproducible: {len(c.differences)} of {c.files} files differ ({how})")
    diffoscope = shutil.which("diffoscope")
    for d in c.differences:
        app.say(f"  {d.file}: first difference in {d.section}")
        if d.kept is not None:
            show = "diffoscope" if diffoscope else "the rebuild, to compare"
            app.say(f"    {show} {shlex.quote(str(d.kept))} {shlex.quote(str(c.published / d.file))}")
