"""The `variant` command line: thin click commands over the builder modules.

Errors are mapped to exit codes in one place, main(): user errors exit 2,
build failures 1, Ctrl-C 130. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from . import __version__, doctor, install, models, patches, profiles, results, spec
from . import bench as bench_mod
from . import build as build_mod
from . import compare as compare_mod
from . import plan as plan_mod
from . import report as report_mod
from . import smoke as smoke_mod
from . import sources as sources_mod
from .errors import UserError, VariantError
from .layout import Layout, find_root
from .tomlfile import suggest


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
            rows.append(
                {
                    "name": name,
                    "status": install.status(layout, name, p.hash),
                    "hash": p.hash,
                    "description": p.variant.description,
                }
            )
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
        raise UserError(
            f'unknown patch series "{series}"' + suggest(series, patches.available(layout.patches_dir))
        )
    for fname, sha in patches.pin(sdir, source).items():
        click.echo(f"{fname} {sha}")


# --- models, smoke, bench, compare, report --------------------------------------


@cli.group()
def model() -> None:
    """Tiny GGUF models generated locally (never downloaded)."""


@model.command("make")
@click.option("--size", type=click.Choice(sorted(models.SIZES)), default="tiny", show_default=True)
@click.option("--type", "type_", type=click.Choice(models.TYPES), default="f16", show_default=True)
@click.option("--layers", type=click.IntRange(min=1), help="Override the size's layer count (a bigger file).")
@click.pass_context
def model_make(ctx: click.Context, size: str, type_: str, layers: int | None) -> None:
    """Write (or find cached) a model and print its path."""
    layout = _layout(ctx)
    path = models.ensure(layout.home / "models", models.spec_for(size, type_, layers), say)
    click.echo(str(path))


@cli.command()
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
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def smoke(
    ctx: click.Context, names: tuple[str, ...], baseline: str | None, load_modes: str | None, as_json: bool
) -> None:
    """Run each installed binary on a tiny model; a patched variant must decode like its baseline."""
    layout = _layout(ctx)
    modes = _load_modes(load_modes) if load_modes else ()
    if bench_mod.FIO_MODE in modes:
        raise UserError(
            "--load-mode fio: fio is a reference for `variant bench --suite load`, not a llama.cpp load mode"
        )
    checks = smoke_mod.smoke(layout, list(names), baseline, say, modes)
    if as_json:
        _emit_json([c.as_dict() for c in checks])
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.variant:<20} {c.binary:<17} {c.detail}")
            if not c.ok:
                click.echo(f"      command: {c.command}")
                for line in c.tail.splitlines()[-12:]:
                    click.echo(f"      | {line}")
    if not all(c.ok for c in checks):
        sys.exit(1)


def _threads(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        threads = tuple(int(x) for x in value.split(","))
    except ValueError:
        raise UserError(f'--threads: expected a comma-separated list of integers, got "{value}"') from None
    if any(t < 1 for t in threads):
        raise UserError("--threads: thread counts must be at least 1")
    return threads


def _load_modes(value: str | None) -> tuple[str, ...]:
    if not value:
        return bench_mod.DEFAULT_LOAD_MODES
    modes = tuple(dict.fromkeys(m.strip() for m in value.split(",")))
    bad = [m for m in modes if not re.fullmatch(r"[a-z][a-z0-9+_-]*", m)]
    if bad:
        raise UserError(f'--load-mode: "{bad[0]}" is not a load mode name (e.g. mmap, none, dio)')
    return modes


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--vs", "baseline", help="The baseline variant (run first in every repetition).")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help=f"One of {', '.join(bench_mod.SUITES)}; repeatable. "
    "Default: the suites the variants' patch series declare, else all.",
)
@click.option("--reps", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--threads", help="Comma-separated thread counts (default: per suite; barrier: 1,cores,2*cores)."
)
@click.option(
    "--profile", "profile_name", default="default", show_default=True, help="A table of profiles.toml."
)
@click.option(
    "--timeout", type=float, help="Seconds before a benchmark process is killed (default: the profile's)."
)
@click.option(
    "--load-mode",
    "load_modes",
    help="load and faults suites: comma-separated llama.cpp load modes (mmap, none, dio, ...); "
    "default: llama.cpp's own default. 'fio' adds the disk's O_DIRECT read limit to the load suite.",
)
@click.option(
    "--layers", type=click.IntRange(min=1), help="Layers of the wide model (default 4; 20 is about 1 GiB)."
)
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.pass_context
def bench(
    ctx: click.Context,
    names: tuple[str, ...],
    baseline: str | None,
    suites: tuple[str, ...],
    reps: int,
    threads: str | None,
    profile_name: str,
    timeout: float | None,
    load_modes: str | None,
    layers: int | None,
    fmt: str,
) -> None:
    """Benchmark installed variants, interleaved, into .variant/results.sqlite; print the comparison."""
    layout = _layout(ctx)
    prof = profiles.load(layout.root, profile_name)
    if timeout is not None:
        prof = dataclasses.replace(prof, timeout=timeout)
    command = shlex.join(["variant", "bench", *sys.argv[2:]]) if len(sys.argv) > 1 else "variant bench"
    run_id = bench_mod.run(
        layout,
        list(names),
        baseline=baseline,
        suites=suites,
        reps=reps,
        threads=_threads(threads),
        profile=prof,
        command=command,
        say=say,
        load_modes=_load_modes(load_modes),
        layers=layers,
    )
    base = baseline or names[0]
    others = [n for n in names if n != base]
    with results.connect(layout.home / "results.sqlite") as con:
        if not others:
            click.echo(compare_mod.render_single(compare_mod.single_rows(con, base, run_id), base, fmt))
        for other in others:
            _, rows = compare_mod.pair_rows(con, base, other, None, run_id)
            click.echo(compare_mod.render(rows, base, other, fmt))
    say(f"stored as run {run_id} in {layout.home / 'results.sqlite'}")


@cli.command("compare")
@click.argument("baseline")
@click.argument("candidate")
@click.option("--suite", help="Only this suite.")
@click.option("--run", "run_id", type=int, help="A stored run id (default: the newest that measured both).")
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@click.pass_context
def compare_cmd(
    ctx: click.Context, baseline: str, candidate: str, suite: str | None, run_id: int | None, fmt: str
) -> None:
    """Baseline vs candidate from stored results, without re-running anything."""
    layout = _layout(ctx)
    with results.connect(layout.home / "results.sqlite") as con:
        _, rows = compare_mod.pair_rows(con, baseline, candidate, suite, run_id)
    click.echo(compare_mod.render(rows, baseline, candidate, fmt))


@cli.command("report")
@click.argument("names", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--run", "run_id", type=int, help="A stored run id (default: the newest that measured all).")
@click.pass_context
def report_cmd(ctx: click.Context, names: tuple[str, ...], out_dir: Path, run_id: int | None) -> None:
    """Markdown report and one PNG plot per suite; the first NAME is the baseline."""
    layout = _layout(ctx)
    path = report_mod.write(layout, list(names), out_dir, say, run_id)
    click.echo(str(path))


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
