"""The `variant` command line: thin click commands, one module per command group, no logic.

Errors are mapped to exit codes in one place, main(): user errors exit 2,
build failures 1, Ctrl-C 130. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import os
import sys

import click

from .. import redact
from ..errors import VariantError
from . import bandwidth, bench, build, catalogue, ci, follow, patch, profile, run, smoke, wheel  # noqa: F401  (each registers its commands)
from .app import cli


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="variant", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, EOFError):
            # click turns an EOFError into Abort as it does Ctrl-C; a file that ends too early
            # (a truncated gzip) is not an interruption. Files the tool reads say which one (exit 2).
            click.echo(f"error: unexpected end of data: {exc.__cause__}", err=True)
            sys.exit(1)
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VariantError as exc:
        # Whatever an error quotes (a URL, a program's output), no secret the run holds is shown.
        click.echo(f"error: {redact.text(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
    sys.exit(0)
