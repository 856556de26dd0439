"""What every writer shares: the argument that picks the gguf-py, the tokenizer and llama keys, seeds.

Imported by the writers only after they put the fork's gguf-py first on sys.path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..models import write_header


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
    return write_header(
        w,
        n_embd=n_embd,
        n_ff=n_ff,
        n_layer=n_layer,
        n_head=n_head,
        n_ctx=2048,
        file_type=file_type,
        name=name,
    )


def llama_shapes(n_embd: int, n_ff: int) -> dict[str, tuple[int, int]]:
    """(rows, columns) of each weight matrix of a layer, by its GGUF name."""
    square = (n_embd, n_embd)
    return {
        "attn_q": square, "attn_k": square, "attn_v": square, "attn_output": square,
        "ffn_gate": (n_ff, n_embd), "ffn_up": (n_ff, n_embd), "ffn_down": (n_embd, n_ff),
    }  # fmt: skip


def to_all(writers: Any, name: str, data: Any) -> None:
    """The same tensor in every writer (norms, embeddings: what all formats share)."""
    for w in writers:
        w.add_tensor(name, data)


def finish(*writers: Any) -> None:
    for w in writers:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
