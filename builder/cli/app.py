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
    found: Layout = ctx.ensure_object(dict)["layout"]
    return found


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
    if ctx.invoked_subcommand == "doctor":
        # the machine first; a catalogue, when there is one, only adds its sources' compiler floors
        try:
            ctx.ensure_object(dict)["layout"] = Layout.at(find_root(Path.cwd(), root), mirrors=mirrors)
        except UserError:
            ctx.ensure_object(dict)["layout"] = None
        return
    ctx.ensure_object(dict)["layout"] = Layout.at(find_root(Path.cwd(), root), mirrors=mirrors)
