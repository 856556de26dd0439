"""The `variant` command line: thin click commands over the builder modules.

Errors are mapped to exit codes in one place, main(): user errors exit 2,
build failures 1, Ctrl-C 130. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from . import __version__, doctor, install, patches, spec
from . import build as build_mod
from . import plan as plan_mod
from . import sources as sources_mod
from .errors import UserError, VariantError
from .layout import Layout, find_root


@dataclass(frozen=True)
class Ctx:
    layout: Layout


def say(msg: str) -> None:
    click.echo(msg, err=True)


def _layout(ctx: click.Context) -> Layout:
    obj: Ctx = ctx.ensure_object(dict)["ctx"]
    return obj.layout


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
@click.version_option(__version__, prog_name="variant")
@click.option(
    "--root", envvar="VARIANT_ROOT", help="Catalogue folder (default: nearest parent with variants/)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log every command run.")
@click.pass_context
def cli(ctx: click.Context, root: str | None, verbose: bool) -> None:
    """Build variants and kernel patch series for llama.cpp and its forks."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
    if ctx.invoked_subcommand == "doctor":
        ctx.ensure_object(dict)["ctx"] = None
        return
    layout = Layout.at(find_root(Path.cwd(), root))
    ctx.ensure_object(dict)["ctx"] = Ctx(layout)


# --- list / show ---------------------------------------------------------------


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every buildable variant with its status: not built, up to date or stale."""
    layout = _layout(ctx)
    srcs = sources_mod.load_all(layout.sources_file)
    rows: list[dict[str, Any]] = []
    for name in spec.names(layout.variants_dir):
        try:
            p = plan_mod.make(layout, name, sources=srcs)
            rows.append({"name": name, "status": install.status(layout, name, p.hash),
                         "hash": p.hash, "description": p.variant.description})  # fmt: skip
        except UserError as exc:
            rows.append({"name": name, "status": "invalid", "hash": None, "description": str(exc)})
    if as_json:
        _emit_json(rows)
    else:
        width = max([len(r["name"]) for r in rows] + [4])
        for r in rows:
            h = (r["hash"] or "-")[:12]
            click.echo(f"{r['name']:<{width}}  {r['status']:<10}  {h:<12}  {r['description']}")
    if any(r["status"] == "invalid" for r in rows):
        sys.exit(2)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """The resolved spec, its hash and the exact CMake command lines."""
    layout = _layout(ctx)
    p = plan_mod.make(layout, name)
    data = p.describe()
    data["status"] = install.status(layout, name, p.hash)
    if as_json:
        _emit_json(data)
        return
    src, tc = p.source, p.toolchain
    patch_names = ", ".join(f"{x['series']}/{x['file']}" for x in p.patch_list())
    lines = [
        f"{name}  ({p.variant.file})",
        f"  description  {p.variant.description}",
        f"  extends      {', '.join(p.variant.extends) or '-'}",
        f"  hash         {p.hash}",
        f"  status       {data['status']}",
        f"  source       {src.name}: {src.url} @ {src.commit}"
        + (f"  (offline: {src.pypi.requirement})" if src.pypi else ""),
        f"  toolchain    {tc.spec.name}: {tc.cc.path} ({tc.cc.version_line})",
        f"  build type   {p.variant.build_type}",
        f"  instrument   {p.variant.instrument}",
        f"  targets      {' '.join(p.variant.targets)}",
        f"  patches      {patch_names or '-'}",
        f"  cmake        {' '.join(f'{k}={v}' for k, v in p.options)}",
        f"  flags        c: {' '.join(p.flags.c) or '-'} | cxx: {' '.join(p.flags.cxx) or '-'}"
        f" | ld: {' '.join(p.flags.ld) or '-'}",
        f"  requires     {', '.join(p.requires) or '-'}",
        "configure:",
        "  " + shlex.join(p.configure_argv()),
        "build:",
        "  " + shlex.join(p.build_argv()),
    ]
    click.echo("\n".join(lines))


# --- build -------------------------------------------------------------------------


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--offline", is_flag=True, help="Do not contact git remotes; use the pinned PyPI sdist.")
@click.option("--force", is_flag=True, help="Rebuild even if the installed variant is up to date.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel compile jobs (default: Ninja's).")
@click.option("--lock-timeout", type=float, envvar="VARIANT_LOCK_TIMEOUT",
              help="Seconds to wait for another build of the same variant (default: wait).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON.")
@click.pass_context
def build(ctx: click.Context, names: tuple[str, ...], offline: bool, force: bool, jobs: int | None,
          lock_timeout: float | None, as_json: bool) -> None:  # fmt: skip
    """Check out, patch, configure, build, verify and install variants to dist/."""
    layout = _layout(ctx)
    # Resolve every name first: a typo in the third name must not cost two builds.
    for name in names:
        plan_mod.make(layout, name)
    opts = build_mod.Options(offline=offline, force=force, jobs=jobs, lock_timeout=lock_timeout)
    results = []
    for name in names:
        out = build_mod.build(layout, name, opts, say)
        results.append(out)
        if out.action == "up to date":
            say(f"{name}: up to date ({out.path}); nothing to do")
        else:
            m = out.manifest
            cc = m.get("ccache") or {}
            say(
                f"{name}: built in {m['build_seconds']} s (ccache {cc.get('hits', 0)} hits, "
                f"{cc.get('misses', 0)} misses; origin {m['source']['origin']}) -> {out.path}"
            )
    if as_json:
        _emit_json([r.manifest for r in results])
    else:
        for r in results:
            for b in r.manifest.get("binaries", []):
                click.echo(str(r.path / "bin" / b["name"]))


# --- sources -----------------------------------------------------------------------


@cli.command()
@click.argument("source", required=False, default="llama.cpp")
@click.option("--offline", is_flag=True, help="Use the pinned PyPI sdist, not git.")
@click.pass_context
def fetch(ctx: click.Context, source: str, offline: bool) -> None:
    """Bring a source's pinned commit into the local mirror (git, or the PyPI fallback)."""
    layout = _layout(ctx)
    srcs = sources_mod.load_all(layout.sources_file)
    if source not in srcs:
        from .tomlfile import suggest

        raise UserError(f'unknown source "{source}"' + suggest(source, srcs) + f" (in {layout.sources_file})")
    base = sources_mod.ensure_base(layout, srcs[source], offline=offline, say=say)
    click.echo(f"{source} {base.commit} origin={base.origin} ({base.detail})")


# --- patch series ------------------------------------------------------------------


@cli.group()
def patch() -> None:
    """Patch series under patches/."""


@patch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def patch_list(ctx: click.Context, as_json: bool) -> None:
    """Every series with its status, upstream link and patches."""
    layout = _layout(ctx)
    rows: list[dict[str, Any]] = []
    for name in patches.available(layout.patches_dir):
        s = patches.load(layout.patches_dir, name, "llama.cpp", referenced_from=layout.patches_dir, key=name)
        rows.append({"series": name, "status": s.status, "upstream": s.upstream, "description": s.description,
                     "bench": list(s.bench), "patches": [p.path.name for p in s.patches]})  # fmt: skip
    if as_json:
        _emit_json(rows)
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
    layout = _layout(ctx)
    sdir = layout.patches_dir / series
    if not (sdir / "series.toml").is_file():
        from .tomlfile import suggest

        raise UserError(
            f'unknown patch series "{series}"' + suggest(series, patches.available(layout.patches_dir))
        )
    for fname, sha in patches.pin(sdir, source).items():
        click.echo(f"{fname} {sha}")


# --- doctor ------------------------------------------------------------------------


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True)
def doctor_cmd(as_json: bool) -> None:
    """Which compilers and tools are present, their versions, and how to get what is missing."""
    findings = doctor.report()
    if as_json:
        _emit_json([f.as_dict() for f in findings])
    else:
        for f in findings:
            mark = "ok " if f.ok else ("MISSING" if f.tool.required else "missing")
            text = f.version or f.where or f.problem
            click.echo(f"{mark:<8} {f.tool.name:<11} {text}")
            if not f.ok:
                click.echo(f"{'':<8} {'':<11} {f.tool.what}; install: {f.tool.install}")
    if any(not f.ok and f.tool.required for f in findings):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="variant", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VariantError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
