"""Tiny llama-architecture GGUF models, generated here (never downloaded).

Random weights from a fixed seed and a small SentencePiece-style vocabulary
with byte fallback, so any prompt tokenizes and greedy decoding is repeatable.
Two sizes: `tiny` loads in milliseconds (smoke tests); `wide` has layers wide
enough that matrix kernels dominate llama-bench and loading takes measurable
time (benchmarks). Files are cached under .variant/models/, keyed by their
parameters, and written to a temporary name first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UserError

TYPES = ("f16", "q8_0", "q4_0", "tq2_0")
# What smoke decodes and the load suites generate from: every word has a token of its own.
PROMPT = "the model is fast"
GENERATOR_VERSION = 1  # bump when the bytes written for the same parameters change

# Words that get a token of their own (with the SentencePiece word marker);
# everything else falls back to byte tokens, so the tokenizer never fails.
WORDS = (
    "the of and to in is that it for on with as was at by be this are from or an have not "
    "but they which one you were all we there can her has more if will what about when "
    "who so up out no time model token barrier thread kernel patch build llama fast slow"
).split()


@dataclass(frozen=True)
class ModelSpec:
    size: str
    type: str
    n_embd: int
    n_ff: int
    n_layer: int
    n_head: int
    n_ctx: int
    seed: int = 42

    @property
    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": GENERATOR_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def filename(self) -> str:
        return f"{self.size}-{self.type}-{self.key}.gguf"

    def n_params(self) -> int:
        n_vocab = len(vocabulary()[0])
        per_layer = 4 * self.n_embd * self.n_embd + 3 * self.n_embd * self.n_ff + 2 * self.n_embd
        return self.n_layer * per_layer + 2 * n_vocab * self.n_embd + self.n_embd


# Row lengths are multiples of 256 so every type, tq2_0 included, can hold them.
SIZES = {
    "tiny": ModelSpec("tiny", "f16", n_embd=256, n_ff=512, n_layer=2, n_head=4, n_ctx=512),
    "wide": ModelSpec("wide", "q8_0", n_embd=2048, n_ff=5632, n_layer=4, n_head=16, n_ctx=1024),
}


def spec_for(size: str, type_: str, layers: int | None = None) -> ModelSpec:
    if size not in SIZES:
        raise UserError(f'unknown model size "{size}" (expected one of: {", ".join(SIZES)})')
    if type_ not in TYPES:
        raise UserError(f'unknown model type "{type_}" (expected one of: {", ".join(TYPES)})')
    spec = replace(SIZES[size], type=type_)
    if layers is not None:
        if layers < 1:
            raise UserError("--layers must be at least 1")
        spec = replace(spec, n_layer=layers)
    return spec


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types (1 normal, 2 unknown, 3 control, 6 byte) of the SPM vocab."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    words = ["\u2581" + w for w in WORDS] + list("abcdefghijklmnopqrstuvwxyz")
    tokens += words
    types += [1] * len(words)
    # Higher score = merged first; longer pieces win over letters and bytes.
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(words))]
    return tokens, scores, types


def write_header(
    w: Any, *, n_embd: int, n_ff: int, n_layer: int, n_head: int, n_ctx: int, file_type: Any, name: str
) -> int:
    """The llama-style shape keys and the tokenizer, on any gguf-py's GGUFWriter; returns the vocabulary size.

    The forks' writers (models/writers/) use it with their own gguf-py, and other
    architectures' prefixes: the writer's architecture names the keys.
    """
    tokens, scores, types = vocabulary()
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    if file_type is not None:
        w.add_file_type(file_type)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    return len(tokens)


def ensure(models_dir: Path, spec: ModelSpec, say: Callable[[str], None] = print) -> Path:
    """The model file for spec, generated on first use."""
    path = models_dir / spec.filename
    if path.is_file():
        return path
    models_dir.mkdir(parents=True, exist_ok=True)
    approx = spec.n_params() * {"f16": 2.0, "q8_0": 1.0625, "q4_0": 0.5625, "tq2_0": 0.27}[spec.type]
    say(f"generating model {spec.filename} ({spec.n_params() / 1e6:.1f} M params, ~{approx / 2**20:.0f} MiB)")
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    try:
        _write(tmp, spec)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write(path: Path, spec: ModelSpec) -> None:
    import gguf  # late: only model generation needs numpy and gguf
    import numpy as np

    qtype = {
        "f16": gguf.GGMLQuantizationType.F16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "q4_0": gguf.GGMLQuantizationType.Q4_0,
        "tq2_0": gguf.GGMLQuantizationType.TQ2_0,
    }[spec.type]
    ftype = {
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
        "tq2_0": gguf.LlamaFileType.MOSTLY_TQ2_0,
    }[spec.type]
    rng = np.random.default_rng(spec.seed)

    w = gguf.GGUFWriter(str(path), "llama")
    n_vocab = write_header(
        w, n_embd=spec.n_embd, n_ff=spec.n_ff, n_layer=spec.n_layer, n_head=spec.n_head, n_ctx=spec.n_ctx,
        file_type=ftype, name=f"llama-variants {spec.size} {spec.type}",
    )  # fmt: skip

    def matrix(
        rows: int, cols: int, kind: gguf.GGMLQuantizationType
    ) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
        # Scaled so activations stay O(1) through the layers: logits stay finite
        # and greedy decoding does not collapse onto one token.
        data = rng.standard_normal((rows, cols), dtype=np.float32) * (1.0 / np.sqrt(cols))
        if kind == gguf.GGMLQuantizationType.F16:
            return data.astype(np.float16), kind
        return gguf.quants.quantize(data, kind), kind

    def add(name: str, data: np.ndarray, kind: gguf.GGMLQuantizationType | None = None) -> None:
        if kind is None or kind in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=kind)

    # Embeddings and output stay f16 for ternary models, as BitNet keeps them.
    edge = gguf.GGMLQuantizationType.F16 if spec.type == "tq2_0" else qtype
    add("token_embd.weight", *matrix(n_vocab, spec.n_embd, edge))
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            add(p + t + ".weight", *matrix(spec.n_embd, spec.n_embd, qtype))
        add(p + "ffn_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
        add(p + "ffn_gate.weight", *matrix(spec.n_ff, spec.n_embd, qtype))
        add(p + "ffn_up.weight", *matrix(spec.n_ff, spec.n_embd, qtype))
        add(p + "ffn_down.weight", *matrix(spec.n_embd, spec.n_ff, qtype))
    add("output_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
    add("output.weight", *matrix(n_vocab, spec.n_embd, edge))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
