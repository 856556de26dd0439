"""A source's offline history (history.toml): the upstream versions it can be built at without a network.

llama.cpp has one pin in sources.toml; following upstream needs the versions
around it. Offline, PyPI's llama-cpp-python sdists are those versions: each
vendors one llama.cpp commit, named on its CHANGELOG.md's first entry. A
source's history lists them oldest first (version, the vendored commit, the
sdist's sha256 as its pin, the release date), so a version or a commit can
be named and ordered before anything is downloaded.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tomlfile as tf
from ..errors import SpecError, UserError

KEYS = ("pypi", "subdir", "versions")
ENTRY_KEYS = ("version", "commit", "sha256", "date", "tag")
COMMIT = re.compile(r"[0-9a-f]{7,40}")  # the sdists' changelogs name newer commits by 9 hex digits
SHA256 = re.compile(r"[0-9a-f]{64}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # as NAME@VERSION's version (source/versions.py)
REF_PREFIX = 7  # the shortest commit prefix a ref may be (git's own default abbreviation)


@dataclass(frozen=True)
class Entry:
    version: str  # the sdist's version (llama-cpp-python==VERSION)
    commit: str  # the upstream commit it vendors, in full or as its changelog abbreviates it
    sha256: str  # the sdist's: its pin
    date: datetime.date  # its release
    tag: str | None = None  # upstream's release tag of the commit, where known (sources.toml's tag)


@dataclass(frozen=True)
class History:
    source: str
    pypi: str  # the package whose sdists these are
    subdir: str  # where in an sdist the source's tree is
    entries: tuple[Entry, ...]  # oldest first
    file: Path = Path("history.toml")  # where it was read: what errors about an entry's pin name

    def find(self, ref: str) -> Entry:
        """The entry of a version ("0.3.30") or a commit (7 or more hex digits); a UserError otherwise."""
        if found := [e for e in self.entries if e.version == ref]:
            return found[0]
        low = ref.lower()
        if len(low) >= REF_PREFIX and re.fullmatch(r"[0-9a-f]+", low):
            found = [e for e in self.entries if e.commit.startswith(low) or low.startswith(e.commit)]
            if len({e.commit for e in found}) == 1:
                return found[0]  # versions that vendor one commit hold one tree: the first of them
            if len(found) > 1:
                raise UserError(f"{self.source}: {ref} names {len(found)} versions; give more digits")
        raise UserError(
            f"{self.source}: no version or commit {ref!r} in its history (expected a version such as "
            f"{self.entries[-1].version}, or 7 or more hex digits of a commit)"
            + tf.suggest(ref, [e.version for e in self.entries])
        )

    def index(self, ref: str) -> int:
        return self.entries.index(self.find(ref))

    def between(self, good: str, bad: str) -> tuple[Entry, ...]:
        """The entries from good to bad, both included; good must be older than bad."""
        i, j = self.index(good), self.index(bad)

        def named(ref: str, k: int) -> str:
            return ref if ref == self.entries[k].version else f"{ref} ({self.entries[k].version})"

        if i == j:
            raise UserError(f"{self.source}: {good} and {bad} are one version ({self.entries[i].version})")
        if i > j:
            raise UserError(
                f"{self.source}: {named(good, i)} is newer than {named(bad, j)}; the good version comes first"
            )
        return self.entries[i : j + 1]


def load(path: Path, sources: Iterable[str]) -> dict[str, History]:
    """history.toml, checked whole: each table a known source, its entries complete, unique and in order."""
    if not path.is_file():
        return {}
    known = list(sources)
    out = {}
    for name, table in tf.load(path).items():
        if name not in known:
            raise SpecError(path, name, "not a source of sources.toml" + tf.suggest(name, known))
        if not isinstance(table, dict):
            raise SpecError(path, name, "expected a table")
        tf.check_keys(path, table, KEYS, f"{name}.")
        pypi, subdir = (tf.get_str(path, table, k, f"{name}.") for k in ("pypi", "subdir"))
        if not pypi or subdir is None:
            raise SpecError(path, name, "expected pypi (the package) and subdir (the tree in its sdist)")
        raw = table.get("versions")
        if not isinstance(raw, list) or not raw:
            raise SpecError(path, f"{name}.versions", "expected an array of tables, oldest first")
        entries = tuple(_entry(path, f"{name}.versions[{i}]", e) for i, e in enumerate(raw))
        _check_order(path, name, entries)
        out[name] = History(name, pypi, subdir, entries, path)
    return out


def _entry(path: Path, where: str, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise SpecError(path, where, "expected a table")
    tf.check_keys(path, raw, ENTRY_KEYS, f"{where}.")
    text = {k: tf.get_str(path, raw, k, f"{where}.") for k in ("version", "commit", "sha256")}
    for key, pattern, what in (("commit", COMMIT, "7 to 40 lowercase hex digits"),
                               ("sha256", SHA256, "64 lowercase hex digits")):  # fmt: skip
        if not pattern.fullmatch(text[key] or ""):
            raise SpecError(path, f"{where}.{key}", f"expected {what}")
    if not text["version"] or not VERSION.fullmatch(text["version"]):
        # it becomes part of a path (dist/NAME@VERSION), a branch and a tag
        raise SpecError(
            path, f"{where}.version", "expected the sdist's version (letters, digits, '.', '_', '-')"
        )
    date = raw.get("date")
    if not isinstance(date, datetime.date) or isinstance(date, datetime.datetime):
        raise SpecError(path, f"{where}.date", "expected a date (2026-10-01, unquoted)")
    return Entry(str(text["version"]), str(text["commit"]), str(text["sha256"]), date,
                 tf.get_str(path, raw, "tag", f"{where}."))  # fmt: skip


def _check_order(path: Path, name: str, entries: tuple[Entry, ...]) -> None:
    for key in ("version", "sha256"):  # a release that changed only the bindings vendors the same commit
        seen: set[str] = set()
        for i, e in enumerate(entries):
            value = getattr(e, key)
            if value in seen:
                raise SpecError(path, f"{name}.versions[{i}].{key}", f"{value} is listed twice")
            seen.add(value)
    for i, (a, b) in enumerate(itertools.pairwise(entries), 1):
        if b.date < a.date:
            raise SpecError(
                path, f"{name}.versions[{i}].date",
                f"{b.version} ({b.date}) is older than {a.version} ({a.date}) before it: oldest first",
            )  # fmt: skip
