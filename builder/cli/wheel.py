"""`variant wheel`: a variant as a llama-cpp-python wheel."""

from __future__ import annotations

from pathlib import Path

import click

from ..layout import Layout
from ..wheel import make as wheel_mod
from . import app


def wheel_dir(layout: Layout, out: str | None) -> Path:
    return Path(out).resolve() if out else layout.dist / "wheels"


@app.cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), help="Where the wheels go (default: dist/wheels).")
@click.option("--offline", is_flag=True, help="Do not contact git remotes; use the pinned PyPI sdist.")
@click.option(
    "--no-mtmd",
    is_flag=True,
    help="Leave out llama-cpp-python's multimodal library (LLAVA_BUILD=OFF: 127 compiles instead of "
    "178 for the upstream pin); the version label ends in .nomtmd.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each wheel's record as JSON.")
@click.pass_context
def wheel(
    ctx: click.Context, names: tuple[str, ...], out: str | None, offline: bool, no_mtmd: bool, as_json: bool
) -> None:
    """Build llama-cpp-python with each variant's patches and options (scikit-build-core), checked."""
    layout = app.layout(ctx)
    # Every name first: a fork among them is refused before minutes go into the others.
    recipes = [wheel_mod.resolve(layout, n, offline_only=offline, mtmd=not no_mtmd) for n in names]
    built = []
    for recipe in recipes:
        b = wheel_mod.build(layout, recipe, wheel_dir(layout, out), app.say, offline_only=offline)
        cc = b.record["ccache"]
        app.say(f"{b.name}: {b.wheel.name} in {b.record['build_seconds']} s "
                f"(ccache {cc.get('hits', 0)} hits, {cc.get('misses', 0)} misses)")  # fmt: skip
        for f in b.record["forced"]:
            app.say(f"{b.name}: {f['option']} asked {f['asked']}, built {f['got']} (set by {f['by']})")
        built.append(b)
    if as_json:
        app.emit_json([{"path": str(b.wheel), **b.record} for b in built])
    else:
        for b in built:
            click.echo(str(b.wheel))
