"""`variant model` and `variant smoke`: the tiny models, and does each installed binary run."""

from __future__ import annotations

import dataclasses
import sys

import click

from ..bench import loading
from ..build import pipeline as build_mod
from ..errors import UserError
from ..layout import Layout
from ..models import models
from ..models.installed import held
from ..smoke import baseline as baseline_mod
from ..smoke import smoke as smoke_mod
from ..smoke.smokecheck import Check
from ..wheel import make as wheel_make
from ..wheel import smoke as wheel_smoke
from . import app
from . import wheel as wheel_cli
from .options import own_models, parse_load_modes


@app.cli.group()
def model() -> None:
    """Tiny GGUF models generated locally (never downloaded)."""


@model.command("make")
@click.option("--size", type=click.Choice(sorted(models.SIZES)), default="tiny", show_default=True)
@click.option("--type", "type_", type=click.Choice(models.TYPES), default="f16", show_default=True)
@click.option("--layers", type=click.IntRange(min=1), help="Override the size's layer count (a bigger file).")
@click.pass_context
def model_make(ctx: click.Context, size: str, type_: str, layers: int | None) -> None:
    """Write (or find cached) a model and print its path."""
    layout = app.layout(ctx)
    path = models.ensure(layout.home / "models", models.spec_for(size, type_, layers), app.say)
    click.echo(str(path))


@app.cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--baseline", help="Compare greedy output with this variant (default: the variant without its patches)."
)
@click.option(
    "--load-mode",
    "load_modes",
    help="Also decode with llama-completion in these comma-separated load modes (e.g. none,dio,uring); "
    "the text must not depend on how the weights were read.",
)
@click.option(
    "--wheel",
    "wheels",
    is_flag=True,
    help="Smoke each variant's wheel instead (see `variant wheel`): installed in a fresh venv, "
    "llama_cpp.Llama must decode like the variant's llama-simple.",
)
@click.option(
    "--wheel-dir", type=click.Path(file_okay=False), help="Where the wheels are (default: dist/wheels)."
)
@click.option(
    "--build-baseline",
    is_flag=True,
    help="Build each variant's baseline first when it is not built (from the same origin as the variant); "
    "without it an unbuilt default baseline is not compared, and the output says so.",
)
@click.option(
    "--model",
    "model_refs",
    multiple=True,
    metavar="[LABEL=]PATH|LABEL",
    help="Smoke on this GGUF model instead of the tiny generated one (see `variant bench --model`); "
    "a variant that cannot run its tensor types is skipped, with the reason. Repeatable.",
)
@click.option(
    "--allow-swap",
    is_flag=True,
    help="--model with --load-mode: decode in resident modes (none, dio, uring, mlock) even a model "
    "larger than the memory available.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def smoke(
    ctx: click.Context,
    names: tuple[str, ...],
    baseline: str | None,
    load_modes: str | None,
    wheels: bool,
    wheel_dir: str | None,
    build_baseline: bool,
    model_refs: tuple[str, ...],
    allow_swap: bool,
    as_json: bool,
) -> None:
    """Run each installed binary on a tiny model; a patched variant must decode like its baseline."""
    layout = app.layout(ctx)
    modes = parse_load_modes(load_modes) if load_modes else ()
    if loading.FIO_MODE in modes:
        raise UserError(
            "--load-mode fio: fio is a reference for `variant bench --suite load`, not a llama.cpp load mode"
        )
    if wheels and (baseline or modes or model_refs):
        raise UserError(
            "--wheel compares each wheel with its own variant: --baseline, --load-mode and --model "
            "do not apply"
        )
    # every refusal of bad input before a baseline is built
    mine = own_models(layout, model_refs)
    if not allow_swap:
        loading.check_memory(modes, [(m.label, m.size) for m in mine])
    if build_baseline and not wheels:
        _build_baselines(layout, names, baseline)
    if wheels:
        recipes = [wheel_make.resolve(layout, n) for n in names]
        folder = wheel_cli.wheel_dir(layout, wheel_dir)
        checks = [c for r in recipes for c in wheel_smoke.run(layout, r, folder, app.say)]
    elif mine:
        checks = [
            dataclasses.replace(c, detail=f"[{m.label}] {c.detail}")
            for m in mine
            for c in smoke_mod.smoke(layout, list(names), baseline, app.say, modes, m)
        ]
    else:
        checks = smoke_mod.smoke(layout, list(names), baseline, app.say, modes)
    if as_json:
        app.emit_json([c.as_dict() for c in checks])
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.variant:<20} {c.binary:<17} {c.detail}")
            if not c.ok:
                _explain(c, err=False)
    failed = [c for c in checks if not c.ok]
    if failed:
        # On stderr too, whatever the format: a script (or CI) that keeps only stderr still sees
        # which row failed and why, not just the exit code.
        app.say(f"smoke: {len(failed)} of {len(checks)} checks failed:")
        for c in failed:
            app.say(f"FAIL  {c.variant} {c.binary}: {c.detail}")
            _explain(c, err=True)
        sys.exit(1)


def _explain(c: Check, *, err: bool) -> None:
    click.echo(f"      command: {c.command}", err=err)
    for line in c.tail.splitlines()[-12:]:
        click.echo(f"      | {line}", err=err)


def _build_baselines(layout: Layout, names: tuple[str, ...], baseline: str | None) -> None:
    """Build the baselines smoke compares with that are not built, offline when the variant was."""
    for name in names:
        base = baseline or baseline_mod.default_baseline(layout, name)
        if base is None or base == name or (layout.dist / base).exists():
            continue
        with held(layout, name) as inst:
            offline = inst.manifest["source"]["origin"] != "git"
        app.say(f"smoke: building {base}, the baseline of {name}{' (offline)' if offline else ''}")
        build_mod.build(layout, base, build_mod.Options(offline=offline), app.say)
