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
        h = patches.header(layout.patches_dir, name, referenced_from=layout.patches_dir, key=name)
        ports = patches.ports(h.dir)
        by_base = {b: [patches.pin_key(h.dir, f) for f in patches.patch_files(h.dir, b)] for b in h.bases()}
        rows.append(
            {
                "series": name,
                "status": h.status,
                "upstream": h.upstream,
                "description": h.description,
                "bench": list(h.bench),
                "bases": [b for b in h.bases() if b != patches.TOP],
                "patches": by_base if ports else {},
            }
        )
    if as_json:
        app.emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['series']}  [{r['status']}]  {r['description']}")
        click.echo(f"    bases: {', '.join(r['bases']) or 'any'}")
        for base, files in r["patches"].items():
            for f in files:
                click.echo(f"    {base if base != patches.TOP else 'any'}: {f}")


@patch.command("pin")
@click.argument("series")
@click.pass_context
def patch_pin(ctx: click.Context, series: str) -> None:
    """Record the sha256 of every patch of SERIES, every port, in its series.toml."""
    layout = app.layout(ctx)
    sdir = layout.patches_dir / series
    if not (sdir / "series.toml").is_file():
        raise UserError(
            f'unknown patch series "{series}"' + suggest(series, patches.available(layout.patches_dir))
        )
    for fname, sha in patches.pin(sdir).items():
        click.echo(f"{fname} {sha}")
