"""An installed variant (dist/NAME) as the bench and smoke stages see it, and how to run its programs."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..layout import Layout
from ..lock import hold
from ..publish import manifest as manifest_file
from ..publish import runtime
from ..publish.manifest import MANIFEST
from ..publish.publish import in_use_lock
from ..spec import variant as spec
from .models import PROMPT


@dataclass(frozen=True)
class Installed:
    name: str
    bin: Path
    manifest: dict[str, Any]

    def env(self) -> dict[str, str]:
        """The caller's environment plus what the variant's binaries need at run time (its [runtime] env)."""
        wanted = (self.manifest.get("runtime") or {}).get("env") or {}
        return {**os.environ, **runtime.env(wanted, self.bin.parent)}

    def runtime_env(self) -> dict[str, str]:
        """Only the variables the variant's binaries need, for a child that already inherits ours."""
        return runtime.env((self.manifest.get("runtime") or {}).get("env") or {}, self.bin.parent)

    def tool(self, name: str) -> str:
        path = self.bin / name
        if not path.is_file():
            raise UserError(f"{self.name} has no {name} (add it to the variant's targets and rebuild)")
        return str(path)


@contextlib.contextmanager
def held(layout: Layout, name: str) -> Iterator[Installed]:
    """The variant's published build, resolved once and kept while the block runs.

    dist/NAME is followed to its folder in dist/.builds once; the binaries run
    and the manifest recorded are that folder's, whatever a concurrent rebuild
    does to dist/NAME meanwhile, and the shared in-use lock keeps publish from
    deleting the folder under us.
    """
    spec.check_name(name)
    for _ in range(5):
        link = layout.dist / name
        if not link.exists():
            raise UserError(f"{name} is not built; run `variant build {name}` first")
        folder = link.resolve()
        with hold(in_use_lock(layout, folder), f"the build {folder.name}", shared=True):
            # Deleted between resolving and locking: a rebuild finished; take the new one.
            if not folder.is_dir():
                continue
            # Checked field by field: what bench, smoke, profile and the wheel read of it is there.
            yield Installed(name, folder / "bin", manifest_file.load(folder / MANIFEST, name))
            return
    raise UserError(f"{name}: dist/{name} kept changing while it was being opened; try again")


@contextlib.contextmanager
def held_all(layout: Layout, names: list[str]) -> Iterator[list[Installed]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(held(layout, n)) for n in names]


def generate_argv(
    inst: Installed, model: Path, mode: str, n_gen: int, threads: int | None = None
) -> list[str]:
    """A greedy generation of n_gen tokens that loads the model with `mode`."""
    if mode == "default" and not (inst.bin / "llama-completion").is_file():
        return [inst.tool("llama-simple"), "-m", str(model), "-n", str(n_gen), PROMPT]
    argv = [inst.tool("llama-completion"), "-m", str(model), "-p", PROMPT, "-n", str(n_gen)]
    argv += ["-no-cnv", "--temp", "0", "--no-warmup", "--seed", "1"]
    argv += [] if threads is None else ["-t", str(threads)]
    return argv + ([] if mode == "default" else ["--load-mode", mode])


def llama_bench_rows(stdout: str) -> list[dict[str, Any]]:
    """The results of `llama-bench -o json`: every fork's llama-bench writes it (ik's has no jsonl)."""
    found = re.search(r"^\[", stdout, re.M)  # the array opens a line; log lines may hold brackets
    if found is None:
        return []
    try:
        rows = json.loads(stdout[found.start() :])
    except ValueError:
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
