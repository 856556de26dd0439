"""An installed variant (dist/NAME) as the bench and smoke stages see it, and how to run its programs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build.publish import read_manifest
from ..errors import UserError
from ..layout import Layout
from .models import PROMPT


@dataclass(frozen=True)
class Installed:
    name: str
    bin: Path
    manifest: dict[str, Any]

    def tool(self, name: str) -> str:
        path = self.bin / name
        if not path.is_file():
            raise UserError(f"{self.name} has no {name} (add it to the variant's targets and rebuild)")
        return str(path)


def installed(layout: Layout, name: str) -> Installed:
    manifest = read_manifest(layout, name)
    if manifest is None:
        raise UserError(f"{name} is not built; run `variant build {name}` first")
    return Installed(name, layout.dist / name / "bin", manifest)


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
