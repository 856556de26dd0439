"""A user's own model, by path, LABEL=PATH or catalogue.toml's [models]; a split GGUF is one model.

Its identity is a hash of what its headers say and how big its files are
(header.py reads only the header region: seconds for 400 GB), so the same
weights renamed, moved or measured on another machine are the same model, and
results name it by label and description, never by a local path.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import scratch
from .. import tomlfile as tf
from ..errors import SpecError, UserError
from . import header, types

LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class OwnModel:
    label: str
    parts: tuple[Path, ...]  # the first part is what programs are given (-m); they find the others
    identity: str  # 16 hex digits: the same file anywhere, under any name
    arch: str
    n_params: int
    size: int  # bytes, all parts
    types: tuple[tuple[str, int, int], ...]  # (type name, tensors, bytes), most bytes first
    type_ids: tuple[tuple[str, int], ...]  # the file's number for each type name
    main: str = ""  # the type of most weights, by count (load() sets it); "" leaves it to types' bytes

    @property
    def path(self) -> Path:
        return self.parts[0]

    @property
    def main_type(self) -> str:
        """The type holding most of the weights (norms and small vectors aside: they are f32 everywhere)."""
        if self.main:
            return self.main
        weighty = [t for t in self.types if t[0] not in ("f32",)] or list(self.types)
        return weighty[0][0] if weighty else "?"

    def about(self) -> str:
        """What the model is, from its headers alone: the same text on every machine."""
        split = f", {len(self.parts)} parts" if len(self.parts) > 1 else ""
        return f"{self.arch} {_count(self.n_params)} {self.main_type}, {self.size / 2**30:.2f} GiB{split}"

    def params(self) -> dict[str, Any]:
        """How a measurement names the model: compare joins on model_id, shows the label and what it is."""
        return {"model": self.label, "model_id": self.identity, "model_about": self.about()}


def _count(n: int) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def catalogue_models(config_file: Path) -> dict[str, Path]:
    """catalogue.toml's [models]: label -> path (relative paths from the catalogue's folder)."""
    if not config_file.is_file():
        return {}
    table = tf.get_table(config_file, tf.load(config_file), "models")
    out = {}
    for label, value in table.items():
        if not LABEL.fullmatch(label):
            raise SpecError(config_file, f"models.{label}", "expected a label of letters, digits, . _ + -")
        if not isinstance(value, str) or not value or "\0" in value:
            raise SpecError(config_file, f"models.{label}", "expected the path of a GGUF file")
        out[label] = (config_file.parent / Path(value).expanduser()).absolute()
    return out


def resolve(ref: str, config_file: Path, cwd: Path | None = None) -> OwnModel:
    """--model REF: a label of catalogue.toml's [models], LABEL=PATH, or a path (labelled by its name)."""
    named = catalogue_models(config_file)
    here = cwd or Path.cwd()

    def is_file(text: str) -> bool:
        return (here / Path(text).expanduser()).is_file()

    label, sep, path_text = ref.partition("=")
    # a path may hold "=" itself (/models/q4=2.gguf, run=2.gguf): the whole text is the path when it
    # names a file and what comes before "=" is no label or what comes after names none
    if sep and is_file(ref) and (not LABEL.fullmatch(label) or not is_file(path_text)):
        sep = ""
    if sep:
        if not LABEL.fullmatch(label):
            raise UserError(f'--model "{ref}": "{label}" is not a label (letters, digits, . _ + -)')
        path = Path(path_text).expanduser()
    elif ref in named:
        label, path = ref, named[ref]
    else:
        path = Path(ref).expanduser()
        if not (here / path).exists() and LABEL.fullmatch(ref) and "." not in ref:
            known = f" (catalogue.toml [models] has: {', '.join(named)})" if named else ""
            raise UserError(f'--model "{ref}": no such file, and no model of that label{known}')
        split = scratch.SPLIT_PART.match(path.name)
        label = split["prefix"] if split else path.name.removesuffix(".gguf")
        label = re.sub(r"[^A-Za-z0-9._+-]", "_", label)[:64] or "model"
    path = path if path.is_absolute() else here / path
    return load(label, path)


def parts_of(path: Path) -> tuple[Path, ...]:
    """All the files of a split model named by any one of them; every part must be there."""
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    m = scratch.SPLIT_PART.match(path.name)
    if not m:
        return (path,)
    no, count = int(m["no"]), int(m["count"])
    if not 1 <= no <= count:
        raise UserError(
            f"{path}: its name says part {no} of {count}; a split model's parts count from 1 to their number"
        )
    parts = tuple(path.with_name(f"{m['prefix']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1))
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        gone = ", ".join(missing)
        raise UserError(f"{path}: a split model of {count} parts is missing {gone} (in {path.parent})")
    return parts


def load(label: str, path: Path) -> OwnModel:
    parts = parts_of(path)
    heads = [header.read(p) for p in parts]
    if len(parts) > 1:
        for i, h in enumerate(heads):
            no, of = h.kv.get("split.no"), h.kv.get("split.count")
            if not isinstance(no, int) or not isinstance(of, int):
                raise UserError(
                    f"{h.path}: its header has no split.no and split.count: not a part of a split model"
                )
            if (no, of) != (i, len(parts)):
                # split.no counts from 0 (llama-gguf-split), the names from 1: both said from 1
                raise UserError(
                    f"{h.path}: its header says part {no + 1} of {of}, its name part {i + 1} of {len(parts)}"
                )
    else:
        no, of = heads[0].kv.get("split.no"), heads[0].kv.get("split.count")
        if isinstance(no, int) and isinstance(of, int) and of > 1:
            # programs would load this one part as the whole model and fail in every cell
            raise UserError(
                f"{path}: its header says part {no + 1} of {of} of a split model; give it its split name "
                f"(PREFIX-{no + 1:05d}-of-{of:05d}.gguf) beside the other parts"
            )
    first = heads[0].kv
    arch = first.get("general.architecture")
    if not isinstance(arch, str):
        raise UserError(f"{path}: no general.architecture in the header: not a model llama.cpp can load")
    bits: dict[int, list[float]] = {}
    count: Counter[int] = Counter()
    weight: Counter[int] = Counter()
    n_params = 0
    for h in heads:
        stored = h.stored_bytes()
        for t in h.tensors:
            n_params += t.elements
            count[t.type_id] += 1
            weight[t.type_id] += stored[t.name]
            bits.setdefault(t.type_id, []).append(stored[t.name] * 8 / max(t.elements, 1))
    mean_bits = {i: sum(b) / len(b) for i, b in bits.items()}
    names = types.resolve_names(count, {}, mean_bits, arch)
    hist = sorted(((names[i], count[i], weight[i]) for i in count), key=lambda x: -x[2])
    digest = hashlib.sha256()
    for h in heads:
        digest.update(f"{h.digest}:{h.file_size};".encode())
    return OwnModel(
        label=label,
        parts=parts,
        identity=digest.hexdigest()[:16],
        arch=arch,
        n_params=n_params,
        size=sum(h.file_size for h in heads),
        types=tuple(hist),
        type_ids=tuple(sorted((names[i], i) for i in count)),
        main=_main_type([t for h in heads for t in h.tensors], names),
    )


def _main_type(tensors: list[header.Tensor], names: dict[int, str]) -> str:
    """The type of most weights in the matrices (2+ dimensions), f32 aside; then of any tensor.

    By weights, not bytes: BitNet b1.58 2B's f16 embedding outweighs its 2-bit layers in bytes.
    """
    for pool in (
        [t for t in tensors if len(t.shape) >= 2 and names[t.type_id] != "f32"],
        [t for t in tensors if names[t.type_id] != "f32"],
        tensors,
    ):
        weights: Counter[str] = Counter()
        for t in pool:
            weights[names[t.type_id]] += t.elements
        if weights:
            return weights.most_common(1)[0][0]
    return "?"
