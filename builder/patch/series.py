"""Patch series (patches/<series>/): load, read and pin the patch files."""

from __future__ import annotations

import dataclasses
import email
import email.header
import email.policy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .. import tomlfile as tf
from ..errors import SpecError, UserError

KEYS = (
    "description", "upstream", "pr", "status", "applies-to", "bench", "requires", "notes", "verify-strings",
    "sha256",
)  # fmt: skip
STATUSES = ("local", "draft", "proposed", "submitted", "open", "merged", "rejected")


@dataclass(frozen=True)
class PatchFile:
    path: Path
    sha256: str
    subject: str
    author: str


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


TOP = "*"  # the port made of the series' top-level patch files


def ports(series_dir: Path) -> dict[str, list[Path]]:
    """Patch files per base: a folder per source (llama.cpp-tmac/), the top level for the others.

    One logical change often needs a port for each fork (the barrier lives in
    ggml-cpu.c upstream and in ggml.c in the T-MAC and BitNet forks).
    """
    out: dict[str, list[Path]] = {}
    for sub in sorted(series_dir.iterdir()) if series_dir.is_dir() else []:
        if sub.is_dir() and (files := sorted(sub.glob("*.patch"))):
            out[sub.name] = files
    if top := sorted(series_dir.glob("*.patch")):
        out[TOP] = top
    return out


def bases(series_dir: Path, applies_to: tuple[str, ...]) -> list[str]:
    """The sources this series has a port for: applies-to's entries with a folder, or served by the
    top-level files; without applies-to, every folder, and TOP (any source) if there are top-level files."""
    found = ports(series_dir)
    if applies_to:
        return [s for s in applies_to if s in found or TOP in found]
    return list(found)


def patch_files(series_dir: Path, source: str) -> list[Path]:
    """The port of a series for source: its folder, else the top-level files."""
    found = ports(series_dir)
    return found.get(source) or found.get(TOP, [])


def patch_folder(series_dir: Path, source: str) -> Path:
    """Where source's port is written (`variant patch refresh`): its folder if there is one (empty or
    not: an empty folder is how a new port starts), else the top level, unless the top-level files
    are another source's port: they belong to applies-to's first source (to any source without
    applies-to), and an edit made for a fork from them starts that fork's own folder instead of
    overwriting them."""
    own = series_dir / source
    if own.is_dir():
        return own
    path = series_dir / "series.toml"
    owner = (tf.get_str_list(path, tf.load(path), "applies-to") or ())[:1] if path.is_file() else ()
    return own if owner and owner[0] != source else series_dir


def pin_key(series_dir: Path, patch: Path) -> str:
    """How series.toml's [sha256] names a patch: its path inside the series folder."""
    return patch.relative_to(series_dir).as_posix()


@dataclass(frozen=True)
class Header:
    """series.toml without any port: what `variant patch list` shows."""

    name: str
    dir: Path
    file: Path
    description: str
    upstream: str | None
    status: str
    applies_to: tuple[str, ...]
    bench: tuple[str, ...]
    requires: tuple[str, ...]
    verify_strings: tuple[str, ...]
    notes: str
    pins: dict[str, object]
    pr: str | None = None  # the series' own pull request (`variant patch status`)

    def bases(self) -> list[str]:
        return bases(self.dir, self.applies_to)

    def supports(self, source: str) -> bool:
        have = self.bases()
        return source in have or TOP in have


@dataclass(frozen=True)
class Series(Header):
    """A series' port for one base: its header and that base's patch files."""

    patches: tuple[PatchFile, ...] = ()
    source: str = ""  # the base whose port this is


def header(patches_dir: Path, name: str, *, referenced_from: Path, key: str) -> Header:
    sdir = patches_dir / name
    path = sdir / "series.toml"
    if not path.is_file():
        raise SpecError(
            referenced_from, key, f'unknown patch series "{name}"' + tf.suggest(name, available(patches_dir))
        )
    data = tf.load(path)
    tf.check_keys(path, data, KEYS)
    return Header(
        name=name,
        dir=sdir,
        file=path,
        description=tf.get_str(path, data, "description") or "",
        upstream=tf.get_str(path, data, "upstream"),
        status=tf.get_enum(path, data, "status", STATUSES) or "local",
        applies_to=tf.get_str_list(path, data, "applies-to") or (),
        bench=tf.get_str_list(path, data, "bench") or (),
        requires=tf.get_str_list(path, data, "requires") or (),
        verify_strings=tf.get_str_list(path, data, "verify-strings") or (),
        notes=tf.get_str(path, data, "notes") or "",
        pins=tf.get_table(path, data, "sha256"),
        pr=tf.get_str(path, data, "pr"),
    )


def load(patches_dir: Path, name: str, source: str, *, referenced_from: Path, key: str) -> Series:
    """The series' port for source; a series with no port for it is an error naming the ones it has."""
    h = header(patches_dir, name, referenced_from=referenced_from, key=key)
    if not h.supports(source):
        have = ", ".join(b for b in h.bases() if b != TOP) or "none"
        raise SpecError(
            referenced_from,
            key,
            f'series "{name}" has no port for source "{source}"; it supports: {have} '
            f"(a port is a folder {h.dir / source}/ of *.patch files, and applies-to in {h.file.name})",
        )
    files = patch_files(h.dir, source)
    if not files:
        raise SpecError(h.file, None, f"no *.patch files in {h.dir} (or {h.dir / source})")
    patches = tuple(read_patch(f) for f in files)
    if h.pins:
        _check_pins(h.file, h.pins, h.dir, patches)
    return Series(
        **{f.name: getattr(h, f.name) for f in dataclasses.fields(h)}, patches=patches, source=source
    )


def _check_pins(path: Path, pins: dict[str, object], sdir: Path, patches: tuple[PatchFile, ...]) -> None:
    every = {pin_key(sdir, f) for files in ports(sdir).values() for f in files}
    for key in pins:
        if key not in every:
            raise SpecError(
                path, f"sha256.{key}", "pinned, but there is no such patch file" + tf.suggest(key, every)
            )
    for p in patches:
        key = pin_key(sdir, p.path)
        if key not in pins:
            raise SpecError(path, "sha256", f"{key} is not pinned; run `variant patch pin`")
        if pins[key] != p.sha256:
            raise SpecError(
                path,
                f"sha256.{key}",
                f"the patch changed since it was pinned (pinned {pins[key]}, file has {p.sha256}); "
                "review it and run `variant patch pin`",
            )


def pin(series_dir: Path) -> dict[str, str]:
    """Rewrite series.toml's [sha256] table (kept last in the file) from every port's patch files."""
    path = series_dir / "series.toml"
    text = path.read_text()
    text = re.split(r"(?m)^\[sha256\]", text)[0].rstrip() + "\n"
    files = [f for found in ports(series_dir).values() for f in found]
    pins = {pin_key(series_dir, f): read_patch(f).sha256 for f in files}
    text += "\n[sha256]  # written by `variant patch pin`; a patch that changes must be re-pinned\n"
    text += "".join(f'"{n}" = "{s}"\n' for n, s in sorted(pins.items()))
    path.write_text(text)
    return pins
