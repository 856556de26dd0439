"""`variant patch ...`: the patch series under patches/."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UserError
from ..patch import series as patches
from ..tomlfile import suggest
from . import app


@app.cli.group()
def patch() -> None:
    """Patch series under patches/."""


@patch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def patch_list(ctx: click.Context, as_json: bool) -> None:
    """Every series with its status, upstream link and patches."""
    layout = app.layout(ctx)
    rows: list[dict[str, Any]] = []
    for name in patches.available(layout.patches_dir):
        s = patches.load(layout.patches_dir, name, "llama.cpp", referenced_from=layout.patches_dir, key=name)
        rows.append(
            {
                "series": name,
                "status": s.status,
                "upstream": s.upstream,
                "description": s.description,
                "bench": list(s.bench),
                "patches": [p.path.name for p in s.patches],
            }
        )
    if as_json:
        app.emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['series']}  [{r['status']}]  {r['description']}")
        for f in r["patches"]:
            click.echo(f"    {f}")


@patch.command("pin")
@click.argument("series")
@click.option("--source", default="llama.cpp", show_default=True, help="Which base's patches to pin.")
@click.pass_context
def patch_pin(ctx: click.Context, series: str, source: str) -> None:
    """Record the sha256 of every patch of SERIES in its series.toml."""
    layout = app.layout(ctx)
    sdir = layout.patches_dir / series
    if not (sdir / "series.toml").is_file():
        raise UserError(
            f'unknown patch series "{series}"' + suggest(series, patches.available(layout.patches_dir))
        )
    for fname, sha in patches.pin(sdir, source).items():
        click.echo(f"{fname} {sha}")
