"""The `variant` click group and what every command shares: the catalogue's layout, output helpers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import UserError
from ..layout import Layout, find_root


def say(msg: str) -> None:
    click.echo(msg, err=True)


def layout(ctx: click.Context) -> Layout:
    """The catalogue's layout, found when a command first asks (so `variant CMD --help` needs none)."""
    obj = ctx.ensure_object(dict)
    if "layout" not in obj:
        obj["layout"] = obj["find_layout"]()
    found: Layout = obj["layout"]
    return found


def layout_if_any(ctx: click.Context) -> Layout | None:
    """The catalogue's layout, or None outside one (doctor: the machine first)."""
    try:
        return layout(ctx)
    except UserError:
        return None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
@click.version_option(__version__, prog_name="variant")
@click.option(
    "--root", envvar="VARIANT_ROOT", help="Catalogue folder (default: nearest parent with variants/)."
)
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of pinned source archives (repeatable; default: VARIANT_MIRRORS, a path list).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every command run.")
@click.pass_context
def cli(ctx: click.Context, root: str | None, mirrors: tuple[str, ...], verbose: bool) -> None:
    """Build variants and kernel patch series for llama.cpp and its forks."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
    ctx.ensure_object(dict)["find_layout"] = lambda: Layout.at(find_root(Path.cwd(), root), mirrors=mirrors)
