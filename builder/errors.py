"""The one exception family for user errors (exit code 2) and build failures (exit 1)."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import redact


class VariantError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


class UserError(VariantError):
    """Bad input: a spec, a name, a pin, a missing tool. Nothing was built or written."""

    exit_code = 2


class SpecError(UserError):
    """An error in a TOML file, located by file and key path."""

    def __init__(self, file: Path | str, key: str | None, message: str) -> None:
        self.file = Path(file)
        self.key = key
        self.message = message
        where = f"{file}: {key}" if key else f"{file}"
        super().__init__(f"{where}: {message}")


class PatchError(UserError):
    """A patch of a series does not apply; the worktree was restored."""


class LockBusy(UserError):
    """Another process holds the lock and we were told not to wait (longer)."""


class BuildError(VariantError):
    """CMake or the compiler failed, or the artifacts do not match the spec."""


class CommandError(VariantError):
    """A subprocess failed: carries the command, its exit code and its stderr tail.

    Both redacted here (redact.py), whoever raises it: the tail is quoted into other errors,
    and a child may have printed a password it was given.
    """

    def __init__(self, argv: list[str], returncode: int, tail: str, log: Path | None = None):
        self.argv = redact.argv(argv)
        self.returncode = returncode
        self.tail = redact.text(tail)
        self.log = log
        msg = f"command failed with exit code {returncode}: {shlex.join(self.argv)}"
        if self.tail.strip():
            msg += "\n" + "\n".join("  | " + line for line in self.tail.rstrip().splitlines())
        if log is not None:
            msg += f"\nfull log: {log}"
        super().__init__(msg)
