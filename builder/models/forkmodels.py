"""Models in the forks' own formats, written here from random weights with a fixed seed, and cached.

A recipe makes one set of weights in several formats: the one the fork's
kernels run (T-MAC's i4, BitNet's tl2 or i2_s, ik's iq4_k) and a reference
the same binary computes without them (f16 or f32), so that a smoke test can
hold the kernel's result against the reference's, and a benchmark can compare
formats like with like. Writers run in a child with the fork's own gguf-py
(models/writers/); formats the fork's llama-quantize makes are made with the
variant's own llama-quantize.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import scratch
from ..errors import UserError
from ..layout import Layout
from ..run import capture
from . import models
from .installed import Installed

Say = Callable[[str], None]
WRITERS = Path(__file__).resolve().parent / "writers"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    kernel_option: str  # the [cmake] option that turns the fork's kernels on ("*": always)
    kernel: str  # the format the kernels run when kernel_option is on
    fallback: str  # the format for a build with the option off (the fork's other kernels), or ""
    reference: str  # the same weights in a plain format
    tolerance: float  # allowed relative perplexity difference between kernel and reference
    why: str  # why that tolerance
    writer: str  # the module of models/writers/ that writes it
    files: tuple[tuple[str, str], ...]  # format -> file name
    layers: int
    version: int = 1  # bump when the bytes written for the same inputs change

    def format_for(self, enabled: bool) -> str:
        return self.kernel if enabled or not self.fallback else self.fallback


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "tmac-i4",
            "a Llama-2-7B-shaped layer (4096 wide, 11008 FFN), 4 bits in groups of 32: i4, f16, q4_0",
            "GGML_TMAC",
            "i4",
            "",
            "f16",
            0.02,
            "T-MAC quantizes the activations to int8 per block of the LUT; f16 keeps them in f16: "
            "measured 0.4% apart here, a wrong kernel is off by orders of magnitude",
            "tmac_i4",
            (("i4", "tmac-i4.gguf"), ("f16", "ref-f16.gguf"), ("q4_0", "q4_0.gguf")),
            1,
        ),
        Recipe(
            "bitnet-ternary",
            "two bitnet_b1_58-large-shaped layers (1536 wide, 4096 FFN), ternary, as tl2, i2_s, f32 and f16",
            "BITNET_X86_TL2",
            "tl2",
            "i2_s",
            "f32",
            0.05,
            "TL2 and i2_s quantize the activations to int8 per tensor (absmax), f32 does not: 1.2% "
            "apart here (TL2 equals i2_s to the last digit); a kernel that drops rows or scales gives NaN",
            "bitnet_ternary",
            (
                ("tl2", "bitnet-tl2.gguf"),
                ("f32", "bitnet-f32.gguf"),
                ("i2_s", "bitnet-i2_s.gguf"),
                ("f16", "bitnet-f16.gguf"),
            ),  # f16: what bitnet.cpp's README measures llama.cpp with
            2,
            version=2,
        ),
        Recipe(
            "ik-iq4k",
            "the tiny llama model in ik's iq4_k, and those very weights back in f16",
            "GGML_IQK_MUL_MAT",
            "iq4_k",
            "",
            "f16",
            0.03,
            "iq4_k's dot products quantize the activations to q8_K, the f16 copy of the same "
            "(dequantized) weights does not: 0.85% apart here",
            "",
            (("iq4_k", "iq4_k.gguf"), ("f16", "iq4_k-as-f16.gguf")),
            2,
        ),
    )
}


def recipe_for(inst: Installed, models_name: str) -> Recipe:
    if models_name not in RECIPES:
        raise UserError(
            f"{inst.name}: its source names the model recipe {models_name!r}; known: {sorted(RECIPES)}"
        )
    return RECIPES[models_name]


def _tree(layout: Layout, inst: Installed, path: str = ".") -> Path:
    wt = layout.worktree(inst.name)
    tree = wt if path == "." else wt / path
    if not tree.is_dir():
        raise UserError(f"{inst.name}: its worktree {tree} is gone; rebuild it (`variant build {inst.name}`)")
    return tree


def _dep_tree(inst: Installed, name: str) -> Path:
    for dep in inst.manifest.get("deps", []):
        if dep["name"] == name and dep.get("worktree") and Path(dep["worktree"]).is_dir():
            return Path(dep["worktree"])
    raise UserError(f"{inst.name}: the worktree of its dependency {name} is gone; rebuild it")


def _key(recipe: Recipe, inst: Installed, layers: int) -> str:
    code = [(WRITERS / f"{m}.py").read_text() for m in (recipe.writer, "common") if recipe.writer]
    blob = json.dumps([recipe.name, recipe.version, layers, inst.manifest["source"]["commit"], code])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure(
    layout: Layout, inst: Installed, recipe: Recipe, say: Say, layers: int | None = None
) -> dict[str, Path]:
    """format -> model file, written on first use into .variant/models/<recipe>-<key>/."""
    layers = layers or recipe.layers
    folder = layout.home / "models" / f"{recipe.name}-{_key(recipe, inst, layers)}"
    files = {fmt: folder / name for fmt, name in recipe.files}
    if all(p.is_file() for p in files.values()):
        return files
    say(f"generating {recipe.name} models ({recipe.description}, {layers} layer(s))")
    stage = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        _write(layout, inst, recipe, stage, layers)
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return files


def _program(argv: list[str], *, env: dict[str, str] | None = None, timeout: float) -> None:
    """A fork's converter or quantizer: in the scratch folder (ik's programs write llama.log beside them)."""
    capture(argv, env=env, timeout=timeout, cwd=scratch.folder())


def _write(layout: Layout, inst: Installed, recipe: Recipe, out: Path, layers: int) -> None:
    common = ["-m", f"builder.models.writers.{recipe.writer}", "--out-dir", str(out), "--layers", str(layers)]
    quantize = inst.tool("llama-quantize")
    env = inst.runtime_env()
    if recipe.name == "tmac-i4":
        fork = _tree(layout, inst)
        kcfg = inst.bin.parent / "share" / "kcfg.ini"
        _program(
            [
                sys.executable,
                *common,
                "--gguf-py",
                str(fork / "gguf-py"),
                "--t-mac",
                str(_dep_tree(inst, "t-mac") / "python"),
                "--kcfg",
                str(kcfg),
            ],
            timeout=900,
        )
        _program(
            [
                quantize,
                "--pure",
                "--token-embedding-type",
                "f16",
                "--output-tensor-type",
                "f16",
                str(out / "ref-f16.gguf"),
                str(out / "q4_0.gguf"),
                "Q4_0",
            ],
            env=env,
            timeout=900,
        )
    elif recipe.name == "ik-iq4k":
        # ik's own quant type, made by its llama-quantize from the tiny f16 model; then the same
        # weights dequantized back into f16: the reference computes them without the IQK kernels.
        tiny = models.ensure(layout.home / "models", models.spec_for("tiny", "f16"), lambda _m: None)
        _program([quantize, str(tiny), str(out / "iq4_k.gguf"), "IQ4_K"], env=env, timeout=900)
        back = [
            quantize,
            "--allow-requantize",
            str(out / "iq4_k.gguf"),
            str(out / "iq4_k-as-f16.gguf"),
            "F16",
        ]
        _program(back,
                env=env, timeout=900)  # fmt: skip
    elif recipe.name == "bitnet-ternary":
        bitnet = _tree(layout, inst)
        _program(
            [
                sys.executable,
                *common,
                "--gguf-py",
                str(bitnet / "3rdparty" / "llama.cpp" / "gguf-py"),
                "--bitnet",
                str(bitnet),
            ],
            timeout=900,
        )
        # One thread: quantize_i2_s() keeps one scale per call, at the end of its chunk.
        _program(
            [
                quantize,
                "--token-embedding-type",
                "f16",
                str(out / "bitnet-f32.gguf"),
                str(out / "bitnet-i2_s.gguf"),
                "I2_S",
                "1",
            ],
            env=env,
            timeout=900,
        )
        f16 = [quantize, str(out / "bitnet-f32.gguf"), str(out / "bitnet-f16.gguf"), "F16"]
        _program(f16, env=env, timeout=900)


def perplexity_text() -> str:
    """A fixed text of the tiny vocabulary's words: what perplexity is measured on."""
    import random

    rng = random.Random(7)
    return " ".join(rng.choice(models.WORDS) for _ in range(700))
