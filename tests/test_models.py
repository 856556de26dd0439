"""Tiny GGUF models: what the writer writes, gguf's own reader reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGMLQuantizationType, GGUFReader

from builder.errors import UserError
from builder.models import models


def _field(reader: GGUFReader, key: str) -> object:
    f = reader.fields[key]
    return f.contents()


@pytest.mark.parametrize("type_", models.TYPES)
def test_tiny_model_reads_back(tmp_path: Path, type_: str) -> None:
    spec = models.spec_for("tiny", type_)
    path = models.ensure(tmp_path, spec, say=lambda _m: None)
    r = GGUFReader(path)
    assert _field(r, "general.architecture") == "llama"
    assert _field(r, "llama.block_count") == spec.n_layer
    assert _field(r, "llama.embedding_length") == spec.n_embd
    assert _field(r, "tokenizer.ggml.model") == "llama"
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert isinstance(tokens, list) and tokens[:3] == ["<unk>", "<s>", "</s>"] and "<0x41>" in tokens
    names = {t.name: t for t in r.tensors}
    assert len(names) == 3 + 9 * spec.n_layer
    want = GGMLQuantizationType[type_.upper()]
    assert names["blk.0.ffn_up.weight"].tensor_type == want
    assert list(names["blk.0.ffn_up.weight"].shape) == [spec.n_embd, spec.n_ff]
    assert names["blk.0.attn_norm.weight"].tensor_type == GGMLQuantizationType.F32
    edge = GGMLQuantizationType.F16 if type_ == "tq2_0" else want
    assert names["token_embd.weight"].tensor_type == edge


def test_models_are_cached_and_keyed_by_parameters(tmp_path: Path) -> None:
    said: list[str] = []
    a = models.ensure(tmp_path, models.spec_for("tiny", "q8_0"), said.append)
    stamp = a.stat().st_mtime_ns
    assert models.ensure(tmp_path, models.spec_for("tiny", "q8_0"), said.append) == a
    assert a.stat().st_mtime_ns == stamp and len(said) == 1
    b = models.ensure(tmp_path, models.spec_for("tiny", "q8_0", layers=3), said.append)
    assert b != a and b.stat().st_size > a.stat().st_size
    assert not list(tmp_path.glob("*.tmp-*"))


def test_same_parameters_same_bytes(tmp_path: Path) -> None:
    spec = models.spec_for("tiny", "q4_0")
    one = models.ensure(tmp_path / "a", spec, lambda _m: None).read_bytes()
    two = models.ensure(tmp_path / "b", spec, lambda _m: None).read_bytes()
    assert one == two


def test_wide_model_is_wide_enough_for_kernels_to_dominate() -> None:
    spec = models.spec_for("wide", "q8_0")
    assert spec.n_params() > 150e6  # ~220 MB at q8_0: hundreds of MB
    assert spec.n_embd % 256 == 0 and spec.n_ff % 256 == 0  # every type, tq2_0 included


def test_bad_model_requests() -> None:
    with pytest.raises(UserError, match="unknown model size"):
        models.spec_for("huge", "f16")
    with pytest.raises(UserError, match="unknown model type"):
        models.spec_for("tiny", "q3_k")
