"""Patch series (patches/<series>/): load, read and pin the patch files."""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .. import tomlfile as tf
from ..errors import SpecError, UserError

KEYS = ("description", "upstream", "status", "applies-to", "bench", "requires", "notes", "sha256")
STATUSES = ("local", "draft", "proposed", "submitted", "merged", "rejected")


@dataclass(frozen=True)
class PatchFile:
    path: Path
    sha256: str
    subject: str
    author: str


@dataclass(frozen=True)
class Series:
    name: str
    dir: Path
    description: str
    upstream: str | None
    status: str
    applies_to: tuple[str, ...]
    bench: tuple[str, ...]
    requires: tuple[str, ...]
    patches: tuple[PatchFile, ...]


def available(patches_dir: Path) -> list[str]:
    return (
        sorted(p.name for p in patches_dir.iterdir() if (p / "series.toml").is_file())
        if patches_dir.is_dir()
        else []
    )


def _header(msg: email.message.Message, name: str) -> str:
    raw = msg.get(name, "")
    text = str(email.header.make_header(email.header.decode_header(raw)))
    return " ".join(text.split())


def read_patch(path: Path) -> PatchFile:
    data = path.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", _header(msg, "Subject"))
    author = _header(msg, "From")
    if not subject or not author:
        raise UserError(f"{path}: not a `git format-patch` file (no From:/Subject: header)")
    return PatchFile(path=path, sha256=hashlib.sha256(data).hexdigest(), subject=subject, author=author)


def patch_files(series_dir: Path, source: str) -> list[Path]:
    """A series may hold one folder per code base (llama.cpp/, bitnet/, ...)."""
    per_base = series_dir / source
    folder = per_base if per_base.is_dir() else series_dir
    return sorted(folder.glob("*.patch"))


def load(patches_dir: Path, name: str, source: str, *, referenced_from: Path, key: str) -> Series:
    sdir = patches_dir / name
    path = sdir / "series.toml"
    if not path.is_file():
        raise SpecError(
            referenced_from, key, f'unknown patch series "{name}"' + tf.suggest(name, available(patches_dir))
        )
    data = tf.load(path)
    tf.check_keys(path, data, KEYS)
    applies_to = tf.get_str_list(path, data, "applies-to") or ()
    if applies_to and source not in applies_to:
        raise SpecError(
            referenced_from,
            key,
            f'series "{name}" applies to {", ".join(applies_to)}, not to source "{source}"',
        )
    files = patch_files(sdir, source)
    if not files:
        raise SpecError(path, None, f"no *.patch files in {sdir} (or {sdir / source})")
    patches = tuple(read_patch(f) for f in files)
    pins = tf.get_table(path, data, "sha256")
    if pins:
        _check_pins(path, pins, patches)
    return Series(
        name=name,
        dir=sdir,
        description=tf.get_str(path, data, "description") or "",
        upstream=tf.get_str(path, data, "upstream"),
        status=tf.get_enum(path, data, "status", STATUSES) or "local",
        applies_to=applies_to,
        bench=tf.get_str_list(path, data, "bench") or (),
        requires=tf.get_str_list(path, data, "requires") or (),
        patches=patches,
    )


def _check_pins(path: Path, pins: dict[str, object], patches: tuple[PatchFile, ...]) -> None:
    by_name = {p.path.name: p for p in patches}
    for fname, pinned in pins.items():
        if fname not in by_name:
            raise SpecError(
                path,
                f"sha256.{fname}",
                "pinned, but there is no such patch file" + tf.suggest(fname, by_name),
            )
        got = by_name[fname].sha256
        if pinned != got:
            raise SpecError(
                path,
                f"sha256.{fname}",
                f"the patch changed since it was pinned (pinned {pinned}, file has {got}); "
                "review it and run `variant patch pin`",
            )
    for fname in by_name:
        if fname not in pins:
            raise SpecError(path, "sha256", f"{fname} is not pinned; run `variant patch pin`")


def pin(series_dir: Path, source: str) -> dict[str, str]:
    """Rewrite series.toml's [sha256] table (kept last in the file) from the patch files."""
    path = series_dir / "series.toml"
    text = path.read_text()
    text = re.split(r"(?m)^\[sha256\]", text)[0].rstrip() + "\n"
    pins = {f.name: read_patch(f).sha256 for f in patch_files(series_dir, source)}
    text += "\n[sha256]  # written by `variant patch pin`; a patch that changes must be re-pinned\n"
    text += "".join(f'"{n}" = "{s}"\n' for n, s in pins.items())
    path.write_text(text)
    return pins
