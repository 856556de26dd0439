"""BitNet b1.58 models: random ternary weights in F32, and the same weights packed as TL2.

Architecture "bitnet" with the matrix shapes of the bitnet_b1_58-large preset
(1536 wide, 4096 FFN, 16 heads) that utils/codegen_tl2.py generated kernels
for, a small vocabulary and a few layers. Each weight matrix is s * t with t
in {-1, 0, 1} and one s per tensor, as BitNet's absmean quantization makes
them; `llama-quantize bitnet-f32.gguf bitnet-i2_s.gguf I2_S 1` gives the i2_s
format of the same weights (one thread: quantize_i2_s keeps one scale per call).
The TL2 packing is BitNet's own numpy code, lifted from its converter (which
imports torch at the top) with `ast`. Usage: python -m
builder.models.writers.bitnet_ternary --gguf-py BITNET/3rdparty/llama.cpp/gguf-py
--bitnet BITNET --out-dir DIR [--layers N] [--seed S]
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import numpy as np

from .common import add_tokenizer_and_shape, arguments, finish, llama_shapes, to_all, use_gguf_py

N_EMBD, N_FF, N_HEAD = 1536, 4096, 16
TL2_FUNCTIONS = {"preprocess_two_weights_tl2", "preprocess_three_weights_tl2", "preprocess_weights_tl2",
                 "transform_to_tl2"}  # fmt: skip


def tl2_packer(bitnet: Path) -> Any:
    """transform_to_tl2(w) -> (packed, scale), run in the BitNet tree: it reads include/kernel_config.ini."""
    source = (bitnet / "utils" / "convert-hf-to-gguf-bitnet.py").read_text()
    body: list[ast.stmt] = [
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in TL2_FUNCTIONS
    ]
    scope: dict[str, Any] = {"np": np, "Tuple": tuple}
    exec(compile(ast.Module(body=body, type_ignores=[]), "convert-hf-to-gguf-bitnet.py (TL2)", "exec"), scope)
    if not scope.keys() >= TL2_FUNCTIONS:
        raise SystemExit(f"{bitnet}: the converter no longer has {sorted(TL2_FUNCTIONS - scope.keys())}")

    def transform(w: Any) -> Any:
        here = Path.cwd()
        os.chdir(bitnet)
        try:
            return scope["transform_to_tl2"](w)
        finally:
            os.chdir(here)

    return transform


def main() -> None:
    ap = arguments(__doc__ or "")
    ap.add_argument(
        "--bitnet", required=True, type=Path, help="the BitNet tree, after its code generator ran"
    )
    args = ap.parse_args()
    gguf = use_gguf_py(args.gguf_py)
    assert int(gguf.GGMLQuantizationType.TL2) == 39, f"{gguf.__file__} has no BitNet TL2 type"
    transform = tl2_packer(args.bitnet.resolve())
    rng = np.random.default_rng(args.seed)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    writers = {}
    for fmt, ftype in (("f32", 0), ("tl2", int(gguf.GGMLQuantizationType.TL2))):
        w = gguf.GGUFWriter(str(out / f"bitnet-{fmt}.gguf"), "bitnet")
        n_vocab = add_tokenizer_and_shape(
            w, n_embd=N_EMBD, n_ff=N_FF, n_layer=args.layers, n_head=N_HEAD, file_type=ftype,
            name=f"llama-variants bitnet {fmt}",
        )  # fmt: skip
        w.add_rope_freq_base(10000.0)
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)  # as BitNet's converter writes them
        w.add_rope_scaling_factor(1.0)
        writers[fmt] = w

    def both(name: str, data: Any) -> None:
        to_all(writers.values(), name, data)

    # token_embd is tied to the output: a small spread keeps the logits, and the perplexity, sane.
    both("token_embd.weight", (rng.standard_normal((n_vocab, N_EMBD)) * 0.05).astype(np.float16))
    both("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    shapes = llama_shapes(N_EMBD, N_FF)
    for il in range(args.layers):
        for short, n in (("attn_norm", N_EMBD), ("attn_sub_norm", N_EMBD), ("ffn_norm", N_EMBD),
                         ("ffn_sub_norm", N_FF)):  # fmt: skip
            both(f"blk.{il}.{short}.weight", np.ones(n, dtype=np.float32))
        for short, (m, k) in shapes.items():
            name = f"blk.{il}.{short}.weight"
            w = rng.integers(-1, 2, size=(m, k)).astype(np.float32) * np.float32(1.5 / np.sqrt(k))
            writers["f32"].add_tensor(name, w)
            packed, scale = transform(w)
            # The fork's GGUFWriter writes a "<name>_scale" tensor's bytes right after its TL2
            # tensor (no tensor info of its own); ggml_bitnet_transform_tensor reads it there.
            writers["tl2"].add_tensor(name, packed, raw_shape=(m, k), raw_dtype=gguf.GGMLQuantizationType.TL2)
            writers["tl2"].add_tensor(name + "_scale", scale, raw_dtype=gguf.GGMLQuantizationType.F32)
    finish(*writers.values())


if __name__ == "__main__":
    main()
