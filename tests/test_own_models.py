"""A user's own GGUF models: the header reader, references and split models, type names, which variant
can run which model, and the links a split model's parts get (builder/models/, builder/scratch.py)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from builder import scratch
from builder.errors import SpecError, UserError
from builder.layout import Layout
from builder.models import header, own, support, types
from builder.models.installed import Installed

# (name, elements, ggml type id, bytes in the file)
Spec = tuple[str, int, int, int]
# One q8_0 matrix and an f32 norm: 32 blocks of 34 bytes, 256 floats (both multiples of the alignment).
PLAIN: tuple[Spec, ...] = (("blk.0.ffn_up.weight", 1024, 8, 1088), ("blk.0.attn_norm.weight", 256, 0, 1024))
UPSTREAM_H = """
enum ggml_type {
    GGML_TYPE_F32     = 0,
    GGML_TYPE_F16     = 1,
    GGML_TYPE_Q4_0    = 2,
    // GGML_TYPE_Q4_2 = 4, support has been removed
    GGML_TYPE_Q8_0    = 8,
    GGML_TYPE_Q4_K    = 12,
    // GGML_TYPE_Q4_0_4_4 = 31,
    GGML_TYPE_MXFP4   = 39, // MXFP4 (1 block)
    GGML_TYPE_COUNT   = 40,
};
enum ggml_prec { GGML_PREC_DEFAULT = 0 };
"""


def write_gguf(
    path: Path, tensors: tuple[Spec, ...] = PLAIN, arch: str = "llama", kv: dict[str, Any] | None = None,
    split_max_tensors: int = 0, shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> list[Path]:  # fmt: skip
    """A GGUF file (or the parts of a split one) as gguf-py writes it, with any type id.

    Each tensor is written as int8 bytes of the size asked, then its info is patched to the
    element count and type id asked: the forks' types (T-MAC's i4, ik's 139) gguf-py does not know.
    A tensor is one-dimensional unless shapes gives its dimensions (their product is its elements).
    """
    shapes = shapes or {}
    w = gguf.GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
    for key, value in (kv or {}).items():
        if isinstance(value, str):
            w.add_string(key, value)
        else:
            w.add_uint32(key, value)
    for name, _, _, size in tensors:
        dims = len(shapes.get(name, (size,)))
        w.add_tensor(name, np.zeros((1,) * (dims - 1) + (size,), dtype=np.int8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    parts = sorted(path.parent.glob(f"{path.stem}-*-of-*.gguf")) if split_max_tensors else [path]
    for part in parts:
        data = bytearray(part.read_bytes())
        for name, elements, type_id, _ in tensors:
            shape = shapes.get(name, (elements,))
            at = data.find(struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(shape)))
            if at >= 0:  # the tensor is in this part: its dimensions, then its type
                at += 8 + len(name) + 4
                data[at : at + 8 * len(shape) + 4] = struct.pack(f"<{len(shape)}QI", *shape, type_id)
        part.write_bytes(bytes(data))
    return parts


def _patch(path: Path, find: bytes, offset: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(find) + offset
    data[at : at + len(value)] = value
    path.write_bytes(bytes(data))


def _refused(path: Path, *said: str) -> str:
    with pytest.raises(UserError) as e:
        header.read(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and all(s in msg for s in said), msg
    return msg


# --- header.read --------------------------------------------------------------------------------


def test_a_good_file_reads_its_keys_tensors_and_data_offset_and_its_digest_follows_the_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, kv={"general.name": "tiny", "llama.block_count": 1})
    h = header.read(path)
    assert h.version == 3 and h.file_size == path.stat().st_size
    assert h.kv == {"general.architecture": "llama", "general.name": "tiny", "llama.block_count": 1}
    assert [(t.name, t.type_id, t.shape, t.offset) for t in h.tensors] == [
        ("blk.0.ffn_up.weight", 8, (1024,), 0),
        ("blk.0.attn_norm.weight", 0, (256,), 1088),
    ]
    assert h.data_offset % 32 == 0 and h.file_size == h.data_offset + 1088 + 1024
    assert h.stored_bytes() == {"blk.0.ffn_up.weight": 1088, "blk.0.attn_norm.weight": 1024}
    # gguf-py reads the same file the same way
    assert gguf.GGUFReader(path).data_offset == h.data_offset
    # renamed and moved: the same bytes, the same digest; another name inside: another digest
    moved = tmp_path / "elsewhere, ü" / "renamed.gguf"
    moved.parent.mkdir()
    shutil.copyfile(path, moved)
    path.unlink()
    assert header.read(moved).digest == h.digest and header.read(moved).path == moved
    write_gguf(path, kv={"general.name": "tinz", "llama.block_count": 1})
    assert header.read(path).digest != h.digest


def test_not_a_gguf_is_refused_naming_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("these are not the weights you are looking for\n" * 4)
    _refused(text, "not a GGUF model")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    _refused(empty, "not a GGUF model")
    _refused(tmp_path / "absent.gguf", "cannot read the model")


def test_a_file_cut_in_its_header_or_its_tensor_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, kv={"general.name": "tiny"})
    whole = path.read_bytes()
    data_offset = header.read(path).data_offset
    last_info = whole.index(b"blk.0.attn_norm.weight") + 30  # its dimensions, type and offset
    for cut, said in ((40, "cannot fit in 40 bytes"), (last_info, "runs past its end")):  # keys, tensor infos
        path.write_bytes(whole[:cut])
        _refused(path, said, f"{cut} bytes")
    path.write_bytes(whole[: data_offset - 4])  # in the padding before the data: no tensor has its bytes
    _refused(path, "truncated GGUF")
    path.write_bytes(whole[: data_offset + 1088 + 100])  # the f32 norm lost most of its bytes
    _refused(
        path, "truncated GGUF: tensor blk.0.attn_norm.weight needs bytes up to", f"has {data_offset + 1188}"
    )


def test_absurd_counts_and_lengths_are_refused_at_once_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, kv={"general.name": "tiny"})
    whole = path.read_bytes()
    key = struct.pack("<Q", len("general.name")) + b"general.name"
    damages = [
        (16, struct.pack("<Q", 1 << 62), "keys and"),  # n_kv
        (8, struct.pack("<Q", 1 << 62), "tensors cannot fit"),  # n_tensors
        (whole.index(key), struct.pack("<Q", 1 << 62), "runs past"),  # a key's length
    ]
    for at, value, said in damages:
        path.write_bytes(whole[:at] + value + whole[at + len(value) :])
        tracemalloc.start()
        t0 = time.monotonic()
        _refused(path, said)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert time.monotonic() - t0 < 1 and peak < 1 << 20, (said, peak)


def test_an_array_longer_than_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_array("tokenizer.ggml.scores", [0.5, 1.5])
    w.add_tensor("t", np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert header.read(path).kv["tokenizer.ggml.scores"] == [0.5, 1.5]
    name = b"tokenizer.ggml.scores"
    _patch(path, name, len(name) + 8, struct.pack("<Q", 1 << 60))  # after the type 9 and the element type
    _refused(path, "tokenizer.ggml.scores", "cannot fit in the file")


def test_a_gguf_shorter_than_its_fixed_header_is_said_to_be_truncated(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\0" * 10)
    assert "not a GGUF" not in _refused(path, "truncated GGUF", "24")


def _one_key(path: Path, key: str, value_head: bytes, size: int) -> None:
    """A GGUF header of one key whose value starts with value_head; the file is sparse up to size bytes."""
    with path.open("wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key.encode() + value_head)
        f.truncate(size)


def _refused_lightly(path: Path, *said: str) -> None:
    tracemalloc.start()
    _refused(path, *said)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20, peak


def test_a_string_or_an_array_past_its_cap_is_refused_by_its_key_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.gguf"
    _one_key(path, "general.name", struct.pack("<IQ", 8, 17 << 20), 20 << 20)  # a 17 MiB string
    _refused_lightly(path, "general.name: a string of 17825792 bytes", "16 MiB")
    # 34 Mi u64 values (272 MiB) where the file holds them: still past any vocabulary
    _one_key(path, "tokenizer.ggml.scores", struct.pack("<IIQ", 9, 10, 34 << 20), 300 << 20)
    _refused_lightly(path, "tokenizer.ggml.scores: an array of 35651584 values", "256 MiB")
    # an array of strings is counted as it is read; small caps keep the file small
    monkeypatch.setattr(header, "MAX_ARRAY", 1 << 20)
    token = struct.pack("<Q", 100_000) + b"t" * 100_000
    _one_key(path, "tokenizer.ggml.tokens", struct.pack("<IIQ", 9, 8, 20) + token * 20, 3 << 20)
    _refused(path, "tokenizer.ggml.tokens: an array of 20 values", "1 MiB")
    _one_key(path, "tokenizer.ggml.tokens", struct.pack("<IIQ", 9, 8, 5) + token * 5, 3 << 20)
    assert header.read(path).kv["tokenizer.ggml.tokens"] == ["t" * 100_000] * 5  # under the cap


def test_a_bad_version_alignment_or_value_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, kv={"x.y": 7})
    whole = path.read_bytes()
    path.write_bytes(whole[:4] + struct.pack("<I", 9) + whole[8:])
    _refused(path, "GGUF version 9", "knows 2, 3")
    path.write_bytes(whole)
    _patch(path, struct.pack("<Q", 3) + b"x.y", 11, struct.pack("<I", 99))  # the value's type: u32 -> 99
    _refused(path, "x.y: unknown GGUF value type 99")
    write_gguf(path, kv={"general.alignment": 48})
    _refused(path, "general.alignment is 48", "power of two")


# --- types ----------------------------------------------------------------------------------------


def test_contested_ids_are_named_by_bits_per_weight_and_architecture() -> None:
    assert types.name_of(39, 4.25, "llama") == "mxfp4"
    assert types.name_of(39, 5.0, "llama") == "i4"  # T-MAC's, scales included
    assert types.name_of(39, 1.7, "bitnet") == "tl2" and types.name_of(39, 1.7, "bitnet-b1.58") == "tl2"
    assert types.name_of(37, 8.0, "bitnet") == "i8_s" and types.name_of(37, 3.0, "llama") == "i2"
    # T-MAC's own conversion of a BitNet model: its 2-bit i2 (id 37), not BitNet's 8-bit i8_s
    assert types.name_of(37, 2.5, "bitnet") == "i2" and types.name_of(39, 5.0, "bitnet-b1.58") == "i4"
    assert types.name_of(36, 2.0, "bitnet") == "i2_s"
    # within 0.3 bits of the nearest, the architecture decides: tl1 is 1.1 away, i3 0.9
    assert types.name_of(38, 3.1, "bitnet") == "tl1" and types.name_of(38, 3.1, "llama") == "i3"
    assert types.name_of(38, 3.5, "bitnet") == "i3"  # 1.5 against 0.5: the bits decide
    assert types.name_of(36, 2.0, "llama") == "i2_s" and types.name_of(36, 1.3, "llama") == "i1"
    assert types.name_of(12, 99.0, "bitnet") == "q4_k"  # the common ids whatever the file shows
    assert types.name_of(139, 4.5, "llama") == "type139"  # a fork's own: no name without its enum
    assert types.resolve_names([139, 12], {139: "iq4_k", 12: "q4_k"}, {}, "llama") == {
        139: "iq4_k",
        12: "q4_k",
    }


def test_parse_enum_leaves_out_commented_members_and_the_count() -> None:
    assert types.parse_enum(UPSTREAM_H) == {0: "f32", 1: "f16", 2: "q4_0", 8: "q8_0", 12: "q4_k", 39: "mxfp4"}
    assert types.parse_enum("enum ggml_prec { GGML_PREC_DEFAULT = 0 };") == {}


def test_nbytes_of_the_common_layouts_and_none_for_the_contested() -> None:
    assert types.nbytes(0, 256) == 1024 and types.nbytes(1, 3) == 6
    assert types.nbytes(8, 1024) == 32 * 34 and types.nbytes(8, 33) == 2 * 34  # a partial block is whole
    assert types.nbytes(12, 512) == 2 * 144
    assert types.nbytes(39, 1024) is None and types.nbytes(139, 1024) is None


# --- own: references, split models, identity -----------------------------------------------------


def test_one_pattern_names_a_split_part_for_the_model_and_for_its_links() -> None:
    m = scratch.SPLIT_PART.match("DeepSeek-R1-Q4_K_M-00002-of-00009.gguf")
    assert m is not None and (m["prefix"], m["suffix"]) == ("DeepSeek-R1-Q4_K_M", "-00002-of-00009.gguf")
    assert (m["no"], m["count"]) == ("00002", "00009")
    assert scratch.SPLIT_PART.match("r1-0002-of-00009.gguf") is None
    assert not hasattr(own, "SPLIT")  # own.py reads split names with scratch's pattern, not a copy


def test_a_path_a_label_and_a_catalogue_label_resolve_and_an_unknown_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "catalogue"
    model = root / "models" / "Llama 3 ü.gguf"
    model.parent.mkdir(parents=True)
    write_gguf(model)
    cfg = root / "catalogue.toml"
    missing_cfg = tmp_path / "none.toml"
    monkeypatch.chdir(tmp_path)  # not the catalogue's folder: its relative paths are from its own
    by_path = own.resolve(str(model), missing_cfg)
    assert by_path.label == "Llama_3__" and by_path.parts == (model,) and by_path.path == model
    assert own.resolve(f"l3=catalogue/models/{model.name}", missing_cfg).label == "l3"
    assert own.resolve(f"l3=catalogue/models/{model.name}", missing_cfg).path == model
    cfg.write_text(f'[models]\nr1 = "models/{model.name}"\n"q4.km" = "/nowhere.gguf"\n')
    assert own.catalogue_models(cfg) == {"r1": model, "q4.km": Path("/nowhere.gguf")}
    named = own.resolve("r1", cfg)
    assert named.label == "r1" and named.path == model and named.identity == by_path.identity
    with pytest.raises(UserError, match=r'"r2": no such file, and no model of that label.*has: r1, q4\.km'):
        own.resolve("r2", cfg)
    with pytest.raises(UserError, match='"my model" is not a label'):
        own.resolve(f"my model={model}", cfg)
    with pytest.raises(UserError, match="no such model file"):
        own.resolve("q4.km", cfg)
    cfg.write_text('[models]\n"bad label" = "x.gguf"\nok = 3\n')
    with pytest.raises(SpecError, match=r"models\.bad label: expected a label"):
        own.catalogue_models(cfg)
    cfg.write_text("[models]\nok = 3\n")
    with pytest.raises(SpecError, match=r"models\.ok: expected the path of a GGUF file"):
        own.catalogue_models(cfg)


def test_a_split_model_is_one_model_from_any_of_its_parts(tmp_path: Path) -> None:
    three = (*PLAIN, ("blk.0.ffn_down.weight", 1024, 8, 1088))
    parts = write_gguf(tmp_path / "r1.gguf", three, split_max_tensors=1)
    assert [p.name for p in parts] == [f"r1-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    models = [own.resolve(str(p), tmp_path / "none.toml") for p in parts]
    assert {m.parts for m in models} == {tuple(parts)} and {m.label for m in models} == {"r1"}
    assert len({m.identity for m in models}) == 1 and models[0].path == parts[0]
    m = models[1]
    assert m.arch == "llama" and m.n_params == 1024 + 256 + 1024
    assert m.size == sum(p.stat().st_size for p in parts)
    assert m.types == (("q8_0", 2, 2176), ("f32", 1, 1024)) and m.main_type == "q8_0"
    assert m.about() == f"llama 0M q8_0, {m.size / 2**30:.2f} GiB, 3 parts"


def test_a_split_model_with_a_part_missing_is_refused_naming_it(tmp_path: Path) -> None:
    parts = write_gguf(tmp_path / "r1.gguf", (*PLAIN, ("x", 256, 0, 1024)), split_max_tensors=1)
    parts[1].unlink()
    with pytest.raises(UserError, match=r"split model of 3 parts is missing r1-00002-of-00003\.gguf"):
        own.load("r1", parts[2])


def test_a_split_name_whose_part_is_not_between_one_and_its_count_is_refused(tmp_path: Path) -> None:
    for name in ("x-00001-of-00000.gguf", "x-00003-of-00002.gguf", "x-00000-of-00002.gguf"):
        path = tmp_path / name
        write_gguf(path)
        with pytest.raises(UserError) as e:
            own.parts_of(path)
        assert str(e.value).startswith(f"{path}: its name says part ") and "from 1 to" in str(e.value)


def test_parts_whose_split_numbers_disagree_with_their_names_are_refused(tmp_path: Path) -> None:
    first, second = write_gguf(tmp_path / "r1.gguf", PLAIN, split_max_tensors=1)
    swap = tmp_path / "swap"
    first.rename(swap)
    second.rename(first)
    swap.rename(second)
    with pytest.raises(UserError) as e:
        own.load("r1", first)
    # split.no counts from 0: the message counts both from 1
    assert str(e.value) == f"{first}: its header says part 2 of 2, its name part 1 of 2"


def test_a_part_of_a_split_model_under_a_plain_name_is_refused(tmp_path: Path) -> None:
    first, second = write_gguf(tmp_path / "r1.gguf", PLAIN, split_max_tensors=1)
    for part, no in ((second, 2), (first, 1)):
        plain = tmp_path / "renamed.gguf"
        part.rename(plain)
        with pytest.raises(UserError) as e:
            own.load("r", plain)  # llama.cpp would load the one part and fail in every cell
        assert str(e.value) == (
            f"{plain}: its header says part {no} of 2 of a split model; give it its split name "
            f"(PREFIX-0000{no}-of-00002.gguf) beside the other parts"
        )
        plain.rename(part)


def test_a_split_name_without_split_keys_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "m-00001-of-00002.gguf", tmp_path / "m-00002-of-00002.gguf"
    write_gguf(a)
    write_gguf(b)
    with pytest.raises(UserError, match=r"m-00001-of-00002\.gguf: its header has no split\.no"):
        own.load("m", b)


def test_the_identity_follows_the_headers_and_sizes_not_the_name_or_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "a.gguf"
    write_gguf(path, kv={"general.name": "a"})
    copy = tmp_path / "moved here" / "b.gguf"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    first, again = own.load("a", path), own.load("b", copy)
    assert first.identity == again.identity and len(first.identity) == 16
    assert first.params() == {"model": "a", "model_id": first.identity, "model_about": first.about()}
    assert again.params()["model"] == "b" and str(tmp_path) not in str(again.params())
    other = tmp_path / "c.gguf"
    write_gguf(other, kv={"general.name": "c"})
    assert own.load("c", other).identity != first.identity
    write_gguf(other, (PLAIN[0], ("blk.0.attn_norm.weight", 512, 1, 1024)), kv={"general.name": "a"})
    assert own.load("c", other).identity != first.identity  # another type, the same size
    no_arch = tmp_path / "d.gguf"
    write_gguf(no_arch)
    _patch(no_arch, b"general.architecture", 0, b"general.architectur_")
    with pytest.raises(UserError, match=r"no general\.architecture"):
        own.load("d", no_arch)


def test_about_and_main_type_say_what_the_weights_mostly_are() -> None:
    m = own.OwnModel(
        label="r1", parts=(Path("/m/a-00001-of-00002.gguf"), Path("/m/a-00002-of-00002.gguf")),
        identity="0123456789abcdef", arch="llama", n_params=8_030_000_000, size=int(4.58 * 2**30),
        types=(("f32", 500, 2**31), ("q4_k", 200, 2**30), ("q6_k", 30, 2**28)),
        type_ids=(("f32", 0), ("q4_k", 12), ("q6_k", 14)),
    )  # fmt: skip
    assert m.main_type == "q4_k"  # f32 norms and vectors aside, whatever their bytes
    assert m.about() == "llama 8.0B q4_k, 4.58 GiB, 2 parts"
    only_f32 = own.OwnModel("t", (Path("/m/t.gguf"),), "0" * 16, "llama", 300_000_000, 2**20,
                            (("f32", 3, 2**20),), (("f32", 0),))  # fmt: skip
    assert only_f32.main_type == "f32" and only_f32.about() == "llama 300M f32, 0.00 GiB"
    counted = own.OwnModel(**{**vars(m), "main": "q6_k"})  # load() counted the weights: its word holds
    assert counted.main_type == "q6_k" and counted.about() == "llama 8.0B q6_k, 4.58 GiB, 2 parts"


def test_the_main_type_is_that_of_most_weights_in_matrices_not_of_most_bytes(tmp_path: Path) -> None:
    # BitNet b1.58 2B: its f16 embedding has more bytes than its 2-bit i2_s layers, a fraction of
    # their weights; an f32 matrix (rope factors, some models' output) does not count either
    bitnet = tmp_path / "bitnet.gguf"
    tensors = (
        ("token_embd.weight", 1280, 1, 2560), ("blk.0.ffn_up.weight", 4096, 36, 1024),
        ("blk.0.ffn_down.weight", 4096, 36, 1024), ("rope_freqs.weight", 16384, 0, 65536), PLAIN[1],
    )  # fmt: skip
    shapes = {"token_embd.weight": (64, 20), "blk.0.ffn_up.weight": (256, 16),
              "blk.0.ffn_down.weight": (16, 256), "rope_freqs.weight": (128, 128)}  # fmt: skip
    write_gguf(bitnet, tensors, arch="bitnet", shapes=shapes)
    assert header.read(bitnet).tensors[0].shape == (64, 20)
    m = own.load("b", bitnet)
    assert m.types == (("f32", 2, 66560), ("f16", 1, 2560), ("i2_s", 2, 2048))  # by bytes, as stored
    assert m.main_type == "i2_s" and m.about().startswith("bitnet 0M i2_s, ")


def test_a_forks_types_are_named_in_the_model(tmp_path: Path) -> None:
    i4 = tmp_path / "i4.gguf"
    write_gguf(i4, (("w", 1024, 39, 640), PLAIN[1]))  # 5.0 bits a weight: T-MAC's i4
    assert dict(own.load("i4", i4).type_ids) == {"i4": 39, "f32": 0}
    mx = tmp_path / "mx.gguf"
    write_gguf(mx, (("w", 1024, 39, 544), PLAIN[1]))  # 4.25: upstream's mxfp4
    assert own.load("mx", mx).main_type == "mxfp4"
    tl2 = tmp_path / "tl2.gguf"
    write_gguf(tl2, (("w", 1280, 39, 288), PLAIN[1]), arch="bitnet-b1.58")
    assert own.load("tl2", tl2).main_type == "tl2"


def test_a_path_holding_an_equals_sign_is_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "runs" / "q4=2.gguf"
    model.parent.mkdir()
    write_gguf(model)
    monkeypatch.chdir(model.parent)
    none = tmp_path / "none.toml"
    for ref in (str(model), "./q4=2.gguf"):  # what comes before "=" is no label: the whole is the path
        m = own.resolve(ref, none)
        assert (m.label, m.path) == ("q4_2", model), ref
    assert (own.resolve("q=q4=2.gguf", none).label, own.resolve("q=q4=2.gguf", none).path) == ("q", model)
    with pytest.raises(UserError, match=r'"\./q5" is not a label'):  # no such file: still the label's error
        own.resolve("./q5=2.gguf", none)


def test_a_file_named_like_label_equals_path_is_that_file_unless_the_path_after_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "runs" / "run=2.gguf"  # "run" is a valid label: the whole text is the file
    model.parent.mkdir()
    write_gguf(model)
    none = tmp_path / "none.toml"
    monkeypatch.chdir(model.parent)
    m = own.resolve("run=2.gguf", none)
    assert (m.label, m.path) == ("run_2", model)
    monkeypatch.chdir(tmp_path)  # the folder the caller names counts, not the process's
    m = own.resolve("run=2.gguf", none, cwd=model.parent)
    assert (m.label, m.path) == ("run_2", model)
    write_gguf(model.with_name("2.gguf"), kv={"general.name": "two"})  # both exist: LABEL=PATH
    m = own.resolve("run=2.gguf", none, cwd=model.parent)
    assert (m.label, m.path) == ("run", model.with_name("2.gguf"))


# --- support: which variant can run which model ---------------------------------------------------

TMAC_H = UPSTREAM_H.replace("GGML_TYPE_MXFP4   = 39, // MXFP4 (1 block)", "GGML_TYPE_I4 = 39,")
BITNET_H = UPSTREAM_H.replace("GGML_TYPE_MXFP4   = 39, // MXFP4 (1 block)", "GGML_TYPE_TL2 = 39,")
IK_H = UPSTREAM_H.replace(
    "GGML_TYPE_COUNT", "GGML_TYPE_Q1_0_G128 = 41,\n    GGML_TYPE_IQ4_K = 139,\n    GGML_TYPE_COUNT"
)


def _inst(name: str, source: str = "llama.cpp", manifest: dict[str, Any] | None = None) -> Installed:
    given = {"source": {"name": source}} if manifest is None else manifest
    return Installed(name, Path("/nowhere/bin"), given)


def _model(tmp_path: Path, name: str, weight: Spec, arch: str = "llama") -> own.OwnModel:
    path = tmp_path / f"{name}.gguf"
    write_gguf(path, (weight, PLAIN[1]), arch=arch)
    return own.load(name, path)


def test_a_type_the_variants_source_does_not_define_is_its_reason_to_skip(tmp_path: Path) -> None:
    upstream = types.parse_enum(UPSTREAM_H)
    i4 = _model(tmp_path, "i4", ("w", 1024, 39, 640))
    tl2 = _model(tmp_path, "tl2", ("w", 1280, 39, 288), arch="bitnet-b1.58")
    iq4_k = _model(tmp_path, "iq4k", ("w", 1024, 139, 576))
    mx = _model(tmp_path, "mx", ("w", 1024, 39, 544))
    q8 = _model(tmp_path, "q8", PLAIN[0])
    up = _inst("upstream-gcc")
    assert support.why_not(i4, up, upstream) == "llama.cpp has no kernel for type i4"
    assert support.why_not(tl2, up, upstream) == "llama.cpp has no kernel for type tl2"
    assert support.why_not(iq4_k, up, upstream) == "llama.cpp has no kernel for type id 139"
    assert support.why_not(mx, up, upstream) is None and support.why_not(q8, up, upstream) is None
    # each fork runs its own type, and not another's under the same id
    tmac, bitnet = _inst("tmac-clang", "llama.cpp-tmac"), _inst("bitnet-clang", "bitnet")
    assert support.why_not(i4, tmac, types.parse_enum(TMAC_H)) is None
    assert (
        support.why_not(mx, tmac, types.parse_enum(TMAC_H)) == "llama.cpp-tmac has no kernel for type mxfp4"
    )
    assert support.why_not(tl2, bitnet, types.parse_enum(BITNET_H)) is None
    assert support.why_not(iq4_k, _inst("ik-gcc", "ik_llama.cpp"), types.parse_enum(IK_H)) is None
    # a source that cannot be read: no skip decided here, the run says so
    assert support.why_not(i4, up, {}) is None
    assert support.why_not(i4, _inst("x", manifest={}), upstream) == "x has no kernel for type i4"


def test_one_layout_under_two_names_is_one_type(tmp_path: Path) -> None:
    # upstream's q1_0 and ik_llama.cpp's q1_0_g128: id 41, a half and 16 bytes for 128 weights
    ik = types.parse_enum(IK_H)
    assert ik[41] == "q1_0" and ik[139] == "iq4_k"
    bonsai = _model(tmp_path, "bonsai", ("w", 1024, 41, 144))
    assert bonsai.main_type == "q1_0"
    assert support.why_not(bonsai, _inst("ik-gcc", "ik_llama.cpp"), ik) is None
    tmac = _inst("tmac-clang", "llama.cpp-tmac")
    assert (
        support.why_not(bonsai, tmac, types.parse_enum(TMAC_H))
        == "llama.cpp-tmac has no kernel for type q1_0"
    )


def _mirror(layout: Layout, source: str, files: dict[str, str], branch: str | None = None) -> str:
    """A bare mirror of source holding one commit of files; returns the commit."""
    work = layout.root / f"{source}-work"
    work.mkdir(parents=True)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)

    def git(*args: str, cwd: Path = work) -> str:
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        return subprocess.run(
            ["git", *ident, *args], cwd=cwd, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "tree")
    if branch:
        git("branch", branch)
    git("clone", "-q", "--bare", str(work), str(layout.mirror(source)), cwd=layout.root)
    return git("rev-parse", "HEAD").strip()


def test_known_types_reads_the_variants_ggml_h_from_its_mirror_at_the_built_commit(
    tmp_path: Path, no_network_git: Path
) -> None:
    layout = Layout.at(tmp_path / "cat")
    head = _mirror(layout, "llama.cpp", {support.GGML_H: UPSTREAM_H, "README.md": "x\n"})
    manifest = {
        "source": {"name": "llama.cpp", "head_commit": head},
        "trees": [{"path": ".", "source": "llama.cpp"}],
    }
    up = _inst("upstream-gcc", manifest=manifest)
    assert support.known_types(layout, up) == types.parse_enum(UPSTREAM_H) and 39 in types.parse_enum(
        UPSTREAM_H
    )
    # BitNet: its own tree has no ggml; the nested llama.cpp's, at the variant's branch, decides
    bitnet_head = _mirror(layout, "bitnet", {"README.md": "BitNet\n"})
    _mirror(layout, "llama.cpp-bitnet", {support.GGML_H: BITNET_H}, branch="variant/bitnet-clang")
    nested = {
        "source": {"name": "bitnet", "head_commit": bitnet_head},
        "trees": [
            {"path": ".", "source": "bitnet"},
            {"path": "3rdparty/llama.cpp", "source": "llama.cpp-bitnet"},
        ],
    }
    assert support.known_types(layout, _inst("bitnet-clang", manifest=nested))[39] == "tl2"
    # no mirror, no such commit, no trees: nothing known (why_not then decides nothing)
    gone = {**manifest, "source": {"name": "llama.cpp", "head_commit": "0" * 40}}
    assert support.known_types(layout, _inst("old", manifest=gone)) == {}
    assert support.known_types(layout, _inst("x", manifest={"source": {"name": "x"}})) == {}
    elsewhere = Layout.at(tmp_path / "other")
    assert support.known_types(elsewhere, up) == {}


# --- scratch: a split model's parts linked together ----------------------------------------------


def test_a_split_model_in_an_odd_folder_gets_every_part_linked_under_one_prefix(tmp_path: Path) -> None:
    folder = tmp_path / "new user ü" / "modèles, v2"
    folder.mkdir(parents=True)
    three = (*PLAIN, ("blk.0.ffn_down.weight", 1024, 8, 1088))
    parts = write_gguf(folder / "Llama 3 ü.gguf", three, split_max_tensors=1)
    other = write_gguf(folder / "other.gguf", PLAIN, split_max_tensors=1)  # another model beside it
    link = scratch.takeable(parts[1])
    assert scratch.plain(str(link)) and link.name.endswith("-00002-of-00003.gguf")
    assert link.resolve() == parts[1].resolve()
    # llama.cpp opens the others by the given part's name: its prefix, then -%05d-of-%05d.gguf
    prefix = link.name.removesuffix("-00002-of-00003.gguf")
    siblings = [link.with_name(f"{prefix}-{i:05d}-of-00003.gguf") for i in (1, 2, 3)]
    assert [s.resolve() for s in siblings] == [p.resolve() for p in parts]
    assert {p.name for p in link.parent.iterdir() if p.name.startswith(prefix)} == {s.name for s in siblings}
    # any part gives the same links; the other model's parts get their own prefix
    assert [scratch.takeable(p) for p in parts] == siblings
    assert not scratch.takeable(other[0]).name.startswith(prefix)
    assert scratch.takeable(other[0]).resolve() == other[0].resolve()
    assert own.load("l3", siblings[0]).parts == tuple(siblings)  # a reader of the link finds every part
