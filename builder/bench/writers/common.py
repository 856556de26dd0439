"""What every writer shares: the argument that picks the gguf-py, the tokenizer and llama keys, seeds.

Imported by the writers only after they put the fork's gguf-py first on sys.path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..models import vocabulary


def arguments(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--gguf-py", required=True, help="the fork's gguf-py folder, imported instead of PyPI's")
    ap.add_argument("--out-dir", required=True, type=Path)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def use_gguf_py(folder: str) -> Any:
    """Import gguf from folder (not the PyPI package) and return the module."""
    sys.path.insert(0, folder)
    import gguf  # the fork's, found first

    if not str(Path(gguf.__file__).resolve()).startswith(str(Path(folder).resolve())):
        raise SystemExit(f"gguf was imported from {gguf.__file__}, not from {folder}")
    return gguf


def add_tokenizer_and_shape(
    w: Any, *, n_embd: int, n_ff: int, n_layer: int, n_head: int, file_type: int | None, name: str
) -> int:
    """The llama-style keys every writer needs; returns the vocabulary size."""
    tokens, scores, types = vocabulary()
    w.add_name(name)
    w.add_context_length(2048)
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
    return len(tokens)


def finish(*writers: Any) -> None:
    for w in writers:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
