"""`variant list`, `show`, `fetch` and `doctor`: the catalogue and the machine."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import UserError
from ..host import doctor
from ..plan import floors
from ..plan import plan as plan_mod
from ..publish import publish as install
from ..source import mirror
from ..source import sources as sources_mod
from ..spec import toolchain
from ..spec import variant as spec
from ..spec.toolchain import ToolchainMissing
from ..tomlfile import suggest
from . import app

# --- list / show ---------------------------------------------------------------


@app.cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every buildable variant with its status: not built, up to date or stale."""
    layout = app.layout(ctx)
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
        except ToolchainMissing as exc:
            # A valid spec this machine cannot build yet: say what it needs, not "invalid".
            v = spec.resolve(layout.variants_dir, name)
            rows.append(
                {
                    "name": name,
                    "status": exc.status,
                    "hash": None,
                    "description": f"{v.description} (install: {exc.spec.install or 'see variant doctor'})",
                }
            )
        except UserError as exc:
            rows.append({"name": name, "status": "invalid", "hash": None, "description": str(exc)})
    if as_json:
        app.emit_json(rows)
    else:
        width = max([len(r["name"]) for r in rows] + [4])
        status_w = max([len(r["status"]) for r in rows] + [10])
        for r in rows:
            h = (r["hash"] or "-")[:12]
            click.echo(f"{r['name']:<{width}}  {r['status']:<{status_w}}  {h:<12}  {r['description']}")
    if any(r["status"] == "invalid" for r in rows):
        sys.exit(2)


@app.cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """The resolved spec, its hash and the exact CMake command lines."""
    layout = app.layout(ctx)
    try:
        p = plan_mod.make(layout, name)
    except ToolchainMissing as exc:
        _show_without_compiler(spec.resolve(layout.variants_dir, name), exc, as_json)
        return
    data = p.describe()
    data["status"] = install.status(layout, name, p.hash)
    if as_json:
        app.emit_json(data)
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
        + (f"  (offline: {src.offline.kind} {src.offline.name})" if src.offline else ""),
        *(f"  nested       {t.path}: {t.source.name} @ {t.source.commit}" for t in p.trees[1:]),
        *(f"  dependency   {d.name} @ {d.source.commit} -> {d.prefix}" for d in p.deps),
        f"  toolchain    {tc.spec.name}: {tc.cc.path} ({tc.cc.version_line})",
        f"  build type   {p.variant.build_type}",
        f"  instrument   {p.variant.instrument}",
        f"  targets      {' '.join(p.variant.targets)}",
        f"  patches      {patch_names or '-'}",
        f"  cmake        {' '.join(f'{k}={v}' for k, v in p.options)}",
        f"  flags        c: {' '.join(p.flags.c) or '-'} | cxx: {' '.join(p.flags.cxx) or '-'}"
        f" | ld: {' '.join(p.flags.ld) or '-'}",
        f"  requires     {', '.join(p.requires) or '-'}",
        *([f"  runtime      {' '.join(f'{k}={v}' for k, v in src.runtime_env)}"] if src.runtime_env else []),
        "configure:",
        "  " + shlex.join(data["configure"]),  # the password of a remote cache hidden
        "build:",
        "  " + shlex.join(p.build_argv()),
    ]
    click.echo("\n".join(lines))


@app.cli.command()
@click.argument("source", required=False, default="llama.cpp")
@click.option("--offline", is_flag=True, help="Use the pinned PyPI sdist, not git.")
@click.pass_context
def fetch(ctx: click.Context, source: str, offline: bool) -> None:
    """Bring a source's pinned commit into the local mirror (git, or the PyPI fallback)."""
    layout = app.layout(ctx)
    srcs = sources_mod.load_all(layout.sources_file)
    if source not in srcs:
        raise UserError(f'unknown source "{source}"' + suggest(source, srcs) + f" (in {layout.sources_file})")
    base = mirror.ensure_base(layout, srcs[source], offline=offline, say=app.say, fetch=True)
    click.echo(f"{source} {base.commit} origin={base.origin} ({base.detail})")


@app.cli.command("doctor")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool) -> None:
    """Which compilers and tools are present, their versions, and how to get what is missing.

    Inside a catalogue, also each source's compiler floor against the toolchains found.
    """
    findings = doctor.report()
    # the machine first; a catalogue, when there is one, only adds its sources' compiler floors
    layout = app.layout_if_any(ctx)
    floors_found = []
    if layout is not None:
        srcs = list(sources_mod.load_all(layout.sources_file).values())
        tcs = [
            toolchain.load(layout.toolchains_dir, n, referenced_from=layout.toolchains_dir, key=n)
            for n in toolchain.available(layout.toolchains_dir)
        ]
        floors_found = floors.survey(srcs, tcs)
    if as_json:
        app.emit_json({"tools": [f.as_dict() for f in findings], "compiler_floors": floors_found})
    else:
        for f in findings:
            mark = "ok " if f.ok else ("MISSING" if f.tool.required else "missing")
            text = f.version or f.where or f.problem
            click.echo(f"{mark:<8} {f.tool.name:<11} {text}")
            if not f.ok:
                click.echo(f"{'':<8} {'':<11} {f.tool.what}; install: {f.tool.install}")
        for row in floors_found:
            mark = "ok " if row["ok"] else "missing"
            found = row["found"] or "none found"
            click.echo(f"{mark:<8} source {row['source']} needs {row['needs']}: {found}")
            if not row["ok"]:
                click.echo(f"{'':<8} install: {row['install'] or 'see the toolchains/ folder'}")
    if any(not f.ok and f.tool.required for f in findings):
        sys.exit(1)


def _show_without_compiler(v: spec.Variant, missing: ToolchainMissing, as_json: bool) -> None:
    """What the spec says, when the compiler that would give it a hash is not installed."""
    data = {
        **v.describe(),
        "hash": None,
        "status": missing.status,
        "problem": str(missing),
        "install": missing.spec.install,
    }
    if as_json:
        app.emit_json(data)
        return
    lines = [f"{v.name}  ({v.file})"]
    lines += [f"  {k.replace('_', ' '):<12} {val}" for k, val in data.items() if k not in ("variant", "file")]
    lines.append(
        "the hash and the exact command lines need the compiler: " + (missing.spec.install or "see doctor")
    )
    click.echo("\n".join(lines))


@app.cli.group("mirror")
def mirror_group() -> None:
    """Source mirrors: the pinned archives an offline machine builds from."""


@mirror_group.command("create")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.argument("names", nargs=-1)
@click.pass_context
def mirror_create(ctx: click.Context, folder: Path, names: tuple[str, ...]) -> None:
    """Write the pinned offline file of every source (or NAMES) into FOLDER, from git or the download cache.

    Point an air-gapped machine at FOLDER with --mirror or VARIANT_MIRRORS.
    """
    layout = app.layout(ctx)
    srcs = sources_mod.load_all(layout.sources_file)
    for name in names:
        if name not in srcs:
            raise UserError(f'unknown source "{name}"' + suggest(name, srcs) + f" (in {layout.sources_file})")
    written = mirror.create_mirror(layout, [srcs[n] for n in names or srcs], folder, app.say)
    for w in written:
        click.echo(f"{w.path} sha256:{w.sha256} {'matches the pin' if w.matches else 'DIFFERS from the pin'}")
    if not all(w.matches for w in written):
        sys.exit(1)
