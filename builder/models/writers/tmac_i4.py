"""T-MAC's 4-bit format (GGML_TYPE_I4, id 39 in the kaleid-liner fork) and the same weights in F16.

The fork's pre-generated kernels exist for Llama-2-7B's matrix shapes only
(4096 x 4096, 11008 x 4096, 4096 x 11008; 4 bits, groups of 32), so the layers
have those shapes; a small vocabulary and one or two layers keep it small.
Each weight is (q - 8) * d per group of 32, the Q4_0 convention: the F16 file
holds exactly the same values (one code per group is 0 and d has 8
significant bits, so F16 and Q4_0 represent them exactly), and
`llama-quantize --pure ref-f16.gguf q4_0.gguf Q4_0` gives the same weights
again. Usage: python -m builder.models.writers.tmac_i4 --gguf-py FORK/gguf-py
--t-mac T-MAC/python --kcfg kcfg.ini --out-dir DIR [--layers N] [--seed S]
"""

from __future__ import annotations

import configparser
import sys
from typing import Any

import numpy as np

from .common import add_tokenizer_and_shape, arguments, finish, llama_shapes, to_all, use_gguf_py

N_EMBD, N_FF, N_HEAD, GROUP, BITS = 4096, 11008, 32, 32, 4


def pack(kcfg: str, q: Any, d: Any) -> Any:
    """T-MAC's own preprocessing (t_mac.weights), for the kernel configuration of this shape.

    t_mac.model_utils.preprocess_for_t_mac does the same but fails under numpy 2
    (it views a strided array as bytes); the scales are made contiguous first here.
    """
    from t_mac.weights import preprocess_weights  # T-MAC's python/, on sys.path

    m, k = q.shape
    cf = configparser.ConfigParser()
    cf.read(kcfg)
    for sec in cf.sections():
        parts = sec.split("_")
        if parts[-4] == f"m{m * BITS}" and parts[-3] == f"k{k}":
            cfg = {key: int(cf.get(sec, key)) for key in ("bm", "kfactor", "simd_n_in", "simd_n_out")}
            break
    else:
        raise SystemExit(f"no T-MAC kernel for a {m} x {k} matrix in {kcfg}")
    w, scales = preprocess_weights(q, d, None, bits=BITS, g=4, **cfg)
    return np.concatenate(
        [w.flatten(), np.ascontiguousarray(scales, dtype=np.float32).view(np.uint8).flatten()]
    )


def main() -> None:
    ap = arguments(__doc__ or "")
    ap.add_argument("--t-mac", required=True, help="T-MAC's python/ folder (t_mac.weights, numpy only)")
    ap.add_argument("--kcfg", required=True, help="the kcfg.ini the kernels were built with")
    args = ap.parse_args()
    gguf = use_gguf_py(args.gguf_py)
    sys.path.insert(0, args.t_mac)
    assert int(gguf.GGMLQuantizationType.I4) == 39, f"{gguf.__file__} has no T-MAC I4 type"
    rng = np.random.default_rng(args.seed)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    def codes(m: int, k: int) -> tuple[Any, Any]:
        q = rng.integers(0, 16, size=(m, k), dtype=np.uint8)
        q[:, ::GROUP] = 0  # the group's largest |value|: Q4_0's quantizer recovers q and d exactly
        base = 1.0 / (4.6 * np.sqrt(k))  # std(q - 8) ~ 4.6: weights of std 1/sqrt(k)
        d = (base * rng.uniform(0.5, 1.5, size=(m, k // GROUP))).astype(np.float16)
        d = (d.view(np.uint16) & np.uint16(0xFFF8)).view(np.float16).astype(np.float32)
        return q, d

    i4 = gguf.GGUFWriter(str(out / "tmac-i4.gguf"), "llama")
    ref = gguf.GGUFWriter(str(out / "ref-f16.gguf"), "llama")
    shape = {"n_embd": N_EMBD, "n_ff": N_FF, "n_layer": args.layers, "n_head": N_HEAD}
    n_vocab = add_tokenizer_and_shape(
        i4, **shape, file_type=int(gguf.LlamaFileType.MOSTLY_INT_N), name="llama-variants T-MAC i4"
    )
    add_tokenizer_and_shape(
        ref, **shape, file_type=int(gguf.LlamaFileType.MOSTLY_F16), name="llama-variants f16"
    )

    def both(name: str, data: Any) -> None:
        to_all((i4, ref), name, data)

    both("token_embd.weight", (rng.standard_normal((n_vocab, N_EMBD)) * 1.0).astype(np.float16))
    both("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    both("output.weight", (rng.standard_normal((n_vocab, N_EMBD)) / np.sqrt(N_EMBD)).astype(np.float16))
    shapes = llama_shapes(N_EMBD, N_FF)
    for il in range(args.layers):
        both(f"blk.{il}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        both(f"blk.{il}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for short, (m, k) in shapes.items():
            name = f"blk.{il}.{short}.weight"
            q, d = codes(m, k)
            packed = pack(args.kcfg, q, d)
            raw_shape = gguf.quant_shape_to_byte_shape((m, k), gguf.GGMLQuantizationType.I4)
            i4.add_tensor(name, packed, raw_dtype=gguf.GGMLQuantizationType.I4, raw_shape=raw_shape)
            ref.add_tensor(
                name, ((q.astype(np.float32) - 8.0) * np.repeat(d, GROUP, axis=1)).astype(np.float16)
            )
    finish(i4, ref)


if __name__ == "__main__":
    main()
