"""`variant run`: any installed program of a variant, run as the user would run it, with its runtime env."""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click

from .. import redact
from ..errors import UserError
from ..layout import Layout
from ..models.installed import Installed, held
from ..publish.publish import in_use_lock
from ..tomlfile import suggest
from . import app

log = logging.getLogger("variant")


@app.cli.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("variant")
@click.argument("program", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--list", "list_", is_flag=True, help="Print the variant's programs, one per line.")
@click.pass_context
def run(ctx: click.Context, variant: str, program: str | None, args: tuple[str, ...], list_: bool) -> None:
    """Run PROGRAM of a built VARIANT with the variant's runtime environment.

    PROGRAM is a file name in dist/VARIANT/bin (`variant run VARIANT --list`
    prints them). It runs in the current folder with this terminal's input and
    output, and `variant run` exits with its exit code (128+N when signal N
    killed it), as if it had been run directly; the variant is held meanwhile,
    so a rebuild does not delete it. Every word after PROGRAM reaches it
    verbatim, options included: `--` is optional, and `variant run upstream-gcc
    llama-quantize --help` shows llama-quantize's help. The binary and the
    environment set from the variant's manifest (T-MAC's TMAC_KCFG_FILE) are
    noted on stderr.

    \b
    variant run upstream-gcc llama-quantize in.gguf out.gguf Q4_K_M
    variant run upstream-gcc -- llama-cli -m out.gguf -p "Once upon a time"
    """
    # click stops reading options at VARIANT (so that none of PROGRAM's is taken for ours): what
    # follows VARIANT in our own words arrives as PROGRAM.
    if program == "--":
        program, args = (args[0], args[1:]) if args else (None, ())
    elif program == "--help":
        click.echo(ctx.get_help())
        return
    elif program == "--list":
        list_, program = True, args[0] if args else None
    if list_ and program is not None:
        raise UserError(f"variant run {variant} --list prints the programs: it runs none ({program})")
    layout = app.layout(ctx)
    with held(layout, variant) as inst:
        names = programs(inst)
        if list_:
            for name in names:
                click.echo(name)
            return
        argv = [str(_program(inst, program, names)), *args]
        env = inst.runtime_env()
        app.say(f"variant run: {argv[0]}" + "".join(f" {k}={shlex.quote(v)}" for k, v in env.items()))
        log.debug("$ %s", shlex.join(redact.argv(argv)))  # as builder/run.py logs the commands it runs
        _become(layout, inst, argv)


def programs(inst: Installed) -> list[str]:
    """The variant's programs: the executable files in its bin/, by name."""
    if not inst.bin.is_dir():
        return []
    return sorted(p.name for p in inst.bin.iterdir() if p.is_file() and os.access(p, os.X_OK))


def _program(inst: Installed, program: str | None, names: list[str]) -> Path:
    """bin/PROGRAM, a program the variant has; a UserError listing them otherwise."""
    has = ", ".join(names) or "none"
    if program is None:
        raise UserError(f"variant run {inst.name}: which program? {inst.name} has: {has}")
    if "/" in program or program in (".", ".."):
        raise UserError(
            f'"{program}": PROGRAM is the file name of a program in {inst.bin}, not a path; '
            f"{inst.name} has: {has}"
        )
    if program not in names:
        hint = suggest(program, names)
        raise UserError(
            f'{inst.name} has no program "{program}"'
            + (hint if hint.startswith(" (did you mean") else "")  # its list of choices is said below
            + f" in {inst.bin}; it has: {has}. A program it does not build is added to its targets, "
            f"then `variant build {inst.name}`"
        )
    return inst.bin / program


def _become(layout: Layout, inst: Installed, argv: list[str]) -> NoReturn:
    """Replace this process with the program (execve), its shared in-use lock handed over.

    builder/run.py, the subprocess wrapper, is at its size limit, and exec is the exact answer
    here anyway: the program is then this process, so its exit status, or the signal that
    killed it, is what the shell sees; Ctrl-C and Ctrl-Z reach it alone, as if it had been run
    directly (llama-cli is interactive); and no Python parent stays in memory beside a model.
    held()'s lock fd closes at exec (close-on-exec), so one more shared lock on the same file is
    taken here on an inheritable fd: the program holds it until it exits, and publish cannot
    delete the build under it. Signals Python ignores (SIGPIPE, SIGXFSZ) stay ignored across
    exec: they are put back to default first, as subprocess does for its children.
    """
    fd = os.open(in_use_lock(layout, inst.bin.parent), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # never waits: held() holds it shared, so nobody holds it exclusive
    os.set_inheritable(fd, True)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, inst.env())
    except OSError as exc:
        os.close(fd)
        raise UserError(f"{argv[0]}: cannot run it ({exc.strerror})") from None
