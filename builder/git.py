"""Thin helpers over the git command line (through the one subprocess wrapper)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .run import Arg, Result, capture

# Commits the tool makes itself (sdist imports, `git am`) use one identity and
# take their dates from their inputs, so the same inputs give the same hashes.
TOOL_IDENTITY = {
    "GIT_COMMITTER_NAME": "llama-variants",
    "GIT_COMMITTER_EMAIL": "llama-variants@localhost",
}

# Settings that would make an import depend on the user's own git config.
NEUTRAL_CONFIG = (
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.safecrlf=false",
    "-c",
    "core.filemode=true",
    "-c",
    "core.symlinks=true",
    "-c",
    "core.attributesFile=/dev/null",
    "-c",
    "core.excludesFile=/dev/null",
)


def git(
    *args: Arg,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
) -> Result:
    argv: list[Arg] = ["git"]
    if git_dir is not None:
        argv += ["--git-dir", git_dir]
    argv += list(args)
    # Never prompt for credentials: an unreachable remote must fail fast so the
    # offline fallback can take over.
    full_env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", **(env or {})}
    return capture(argv, cwd=cwd, env=full_env, check=check, input=input)


def out(*args: Arg, cwd: Path | None = None, git_dir: Path | None = None) -> str:
    return git(*args, cwd=cwd, git_dir=git_dir).stdout.strip()


def has_commit(git_dir: Path, commit: str) -> bool:
    if not git_dir.exists():
        return False
    return git("cat-file", "-e", f"{commit}^{{commit}}", git_dir=git_dir, check=False).returncode == 0
