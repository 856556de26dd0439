"""The bytes a generated token reads, from a model's GGUF header: the numerator of the bandwidth share.

Generating one token multiplies the token's activations by every weight
matrix once, so it reads every tensor's bytes as stored (header.stored_bytes:
a fork's own types included, whatever their layout), except:

- the token embedding, of which one row is read (a lookup), unless the model
  has no output matrix and multiplies by the embedding instead (tied output);
- a mixture of experts' expert tensors (names with `_exps`), of which the
  token's expert_used_count of expert_count are read;

plus the KV cache: every layer's K and V rows of each cell attention reads, in
f16 (llama-bench's default cache type). The cells read are the positions so
far rounded up to the code base's padding (256 cells in llama.cpp since 2025,
32 in older trees without flash attention: sources.toml `kv-padding`), capped
by the context (itself rounded up), averaged over the generated tokens.

Prompt processing's estimate counts 2 FLOPs per weight element a token is
multiplied by (attention's own products are left out: small at these contexts),
with the output matrix once per batch: llama-bench asks for the last token's
logits only. A prompt token reads a 1/n_prompt share of the weights (the batch
reads them once), which places it on the report's roofline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import header

KV_BYTES = 2  # f16: llama-bench's -ctk/-ctv default
LAYER = re.compile(r"blk\.\d+\.attn_[kv]\.weight")


@dataclass(frozen=True)
class Traffic:
    weights: int  # bytes of weights one generated token reads
    kv_per_cell: int  # bytes of K and V of one cache cell, all layers
    matmul_elements: int  # weight elements a generated token is multiplied by (the output matrix included)
    how: str  # what was counted, for the tables' notes
    output_elements: int = 0  # of those, the output matrix's (or the tied embedding's)

    def per_token(self, n_prompt: int, n_gen: int, padding: int = 256) -> int:
        """Bytes read per generated token over a llama-bench tg run of n_gen after n_prompt."""
        return self.weights + round(self.kv_per_cell * kv_cells(n_prompt, n_gen, padding))

    def prompt_flops(self, n_prompt: int) -> float:
        """FLOPs per prompt token of a batch of n_prompt: the output matrix for the last token only."""
        inner = self.matmul_elements - self.output_elements
        return 2.0 * (inner + self.output_elements / max(n_prompt, 1))


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def kv_cells(n_prompt: int, n_gen: int, padding: int = 256) -> float:
    """The cells attention reads per generated token, averaged over the n_gen tokens.

    Token i reads the positions up to and including its own (n_prompt + i + 1),
    rounded up to the padding, at least one padding's worth (llama.cpp's
    get_n_kv). get_n_kv also caps it at the cache, the context (n_prompt + n_gen)
    rounded up the same way, which a llama-bench run never reaches: left out.
    """
    if n_gen < 1:
        return 0.0
    return sum(max(padding, _pad(n_prompt + i + 1, padding)) for i in range(n_gen)) / n_gen


def _ints(value: object) -> list[int]:
    """A key that may be one number or one per layer (head_count_kv of models with varying heads)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def _kv_from_keys(kv: dict[str, object], arch: str) -> int:
    """K and V elements per cell, all layers, from the shape keys (a fused QKV leaves no K or V tensor)."""
    layers = _ints(kv.get(f"{arch}.block_count"))
    embd = _ints(kv.get(f"{arch}.embedding_length"))
    heads = _ints(kv.get(f"{arch}.attention.head_count"))
    if not (layers and embd and heads) or not heads[0]:
        return 0
    n_layer = layers[0]
    if lora := _ints(kv.get(f"{arch}.attention.kv_lora_rank")):  # MLA: one compressed row and RoPE part
        rope = _ints(kv.get(f"{arch}.rope.dimension_count")) or [0]
        return n_layer * (lora[0] + rope[0])
    kv_heads = _ints(kv.get(f"{arch}.attention.head_count_kv")) or heads
    per_layer = kv_heads if len(kv_heads) == n_layer else kv_heads[:1] * n_layer
    k = (_ints(kv.get(f"{arch}.attention.key_length")) or [embd[0] // heads[0]])[0]
    v = (_ints(kv.get(f"{arch}.attention.value_length")) or [k])[0]
    return sum(h * (k + v) for h in per_layer)


def of(paths: Sequence[Path]) -> Traffic:
    """The traffic of a model: its one file, or every part of a split model."""
    heads = [header.read(p) for p in paths]
    kv = heads[0].kv
    arch = kv.get("general.architecture")
    arch = arch if isinstance(arch, str) else ""
    sizes: dict[str, int] = {}
    tensors: dict[str, header.Tensor] = {}
    for h in heads:
        sizes |= h.stored_bytes()
        tensors |= {t.name: t for t in h.tensors}
    used, total = _ints(kv.get(f"{arch}.expert_used_count")), _ints(kv.get(f"{arch}.expert_count"))
    experts = (used[0], total[0]) if used and total and total[0] else None
    weights = matmul = output = 0
    kv_elements = 0
    notes = []
    tied = "output.weight" not in tensors
    for name, t in tensors.items():
        size, elements = sizes[name], t.elements
        if name == "token_embd.weight" and not tied:
            rows = t.shape[1] if len(t.shape) > 1 and t.shape[1] else 1
            size, elements = size // rows, 0  # a lookup: one row, no product
        elif "_exps." in name and experts:
            size, elements = size * experts[0] // experts[1], elements * experts[0] // experts[1]
        weights += size
        if len(t.shape) > 1:
            matmul += elements
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            output = elements
        if LAYER.fullmatch(name) and len(t.shape) > 1:
            kv_elements += t.shape[1]
    if "token_embd.weight" in tensors:
        notes.append("embedding: tied to the output, read whole" if tied else "embedding: one row")
    if experts:
        notes.append(f"{experts[0]} of {experts[1]} experts")
    if not kv_elements:
        kv_elements = _kv_from_keys(kv, arch)
        notes.append("KV from the shape keys" if kv_elements else "KV not counted (no attention shape)")
    return Traffic(weights, kv_elements * KV_BYTES, matmul, "; ".join(notes), output)
