"""Thin helpers over the git command line (through the one subprocess wrapper)."""

from __future__ import annotations

import os
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

# Commits the tool makes must not depend on who runs it: no system or global
# config at all (a user's commit.gpgsign, core.hooksPath, am.messageid, apply.whitespace
# or mailinfo settings would change or break them), and the repository-level
# keys that could change them pinned too. Fetching keeps the user's config:
# url.<base>.insteadOf is how mirrors are configured.
# With no global config there is no user.name either: the tool's own identity
# signs the reflog entries of checkout, reset and `am --abort`.
NEUTRAL_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, **TOOL_IDENTITY}
COMMIT_CONFIG = (
    *NEUTRAL_CONFIG,
    *("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "am.messageid=false"),
    *("-c", "am.keepcr=false", "-c", "apply.whitespace=nowarn", "-c", "mailinfo.scissors=false"),
    *("-c", "i18n.commitEncoding=UTF-8", "-c", "gc.auto=0"),
)


def git(
    *args: Arg,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    neutral: bool = False,
) -> Result:
    """git with args; neutral=True for commands that make commits (see COMMIT_CONFIG)."""
    argv: list[Arg] = ["git"]
    if neutral:
        argv += COMMIT_CONFIG
    if git_dir is not None:
        argv += ["--git-dir", git_dir]
    argv += list(args)
    # Never prompt for credentials: an unreachable remote must fail fast so the
    # offline fallback can take over.
    full_env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        **(NEUTRAL_ENV if neutral else {}),
        **(env or {}),
    }
    return capture(argv, cwd=cwd, env=full_env, check=check, input=input)


def out(*args: Arg, cwd: Path | None = None, git_dir: Path | None = None) -> str:
    return git(*args, cwd=cwd, git_dir=git_dir).stdout.strip()


def has_commit(git_dir: Path, commit: str) -> bool:
    if not git_dir.exists():
        return False
    return git("cat-file", "-e", f"{commit}^{{commit}}", git_dir=git_dir, check=False).returncode == 0
