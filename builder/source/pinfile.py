"""Rewriting one source's pin in sources.toml, and nothing else: other tables, comments and the
layout of the file stay as the person wrote them (`variant pin`).

Only the keys of the source's own table (`["llama.cpp"]`, not its sub-tables)
are touched: a key whose value changes keeps its line's alignment and trailing
comment unless a new comment is given; a key that goes away loses its line; a
new key is written after the commit line, aligned like it. The result is read
back before it is written, so a rewrite that would not load (or would change
another source) never reaches the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError, UserError
from . import sources as sources_mod
from .sources import Source

# A table header: ["llama.cpp"], or a bare name without dots (a dotted bare name is a nested table).
HEADER = re.compile(r"^\s*\[\s*(?P<name>\"[^\"]*\"|[A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")
# Any table or array-of-tables header: what ends the source's table.
ANY_HEADER = re.compile(r"^\s*\[\[?[^\[\]=]*\]\]?\s*(#.*)?$")
KEY_LINE = (r"^(?P<ind>\s*)(?P<key>{key})(?P<pad>\s*)=(?P<sp>\s*)(?P<value>\"[^\"]*\"|'[^']*')"
            r"(?P<rest>\s*(#.*)?)$")  # fmt: skip


@dataclass(frozen=True)
class Change:
    value: str | None  # None: the key goes away
    comment: str | None = None  # None: the line's own comment is kept


def _table(lines: list[str], name: str) -> tuple[int, int]:
    """The first line after the table's header and the line where the next table starts."""
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if m and m["name"].strip('"') == name:
            end = next((j for j in range(i + 1, len(lines)) if ANY_HEADER.match(lines[j])), len(lines))
            return i + 1, end
    raise UserError(f'sources.toml has no table ["{name}"]')


def rewrite(text: str, name: str, changes: dict[str, Change]) -> str:
    lines = text.splitlines(keepends=True)
    start, end = _table(lines, name)
    out = lines[:start]
    done: set[str] = set()
    anchor = None  # where a new key goes: after the commit line
    for line in lines[start:end]:
        body = line.rstrip("\n")
        key = next((k for k in changes if re.match(KEY_LINE.format(key=re.escape(k)), body)), None)
        if key is None:
            out.append(line)
        else:
            done.add(key)
            m = re.match(KEY_LINE.format(key=re.escape(key)), body)
            assert m is not None
            change = changes[key]
            if change.value is not None:
                rest = m["rest"] if change.comment is None else f"   # {change.comment}"
                out.append(f'{m["ind"]}{key}{m["pad"]}={m["sp"]}"{change.value}"{rest}\n')
        if body.lstrip().startswith("commit"):
            anchor = len(out)
    added = [k for k, c in changes.items() if k not in done and c.value is not None]
    if added:
        if anchor is None:
            raise UserError(f'sources.toml: ["{name}"] has no commit line to write {", ".join(added)} after')
        width = max(len("commit"), *(len(k) for k in added))
        new = []
        for k in added:
            comment = f"   # {changes[k].comment}" if changes[k].comment else ""
            new.append(f'{k.ljust(width)} = "{changes[k].value}"{comment}\n')
        out[anchor:anchor] = new
    return "".join(out + lines[end:])


def check(path: Path, name: str, changes: dict[str, Change]) -> str:
    """The rewritten text, read back: a UserError if it would not load or would change another
    source. Nothing is written (`variant pin` checks before it rebases anything)."""
    before = sources_mod.load_all(path)
    text = rewrite(path.read_text(), name, changes)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    try:
        after = sources_mod.load_all(tmp)
    except SpecError as exc:
        raise UserError(
            f"{path}: the rewritten {name} entry would not load: {exc.key}: {exc.message}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    if set(before) != set(after):
        raise UserError(f"{path}: rewriting {name} would change which sources there are")
    if others := [n for n in before if n != name and before[n].identity() != after[n].identity()]:
        raise UserError(f"{path}: rewriting {name} would change {', '.join(others)}")
    return text


def write(path: Path, name: str, changes: dict[str, Change]) -> Source:
    """Rewrite the file atomically (checked first); returns the source as it now loads."""
    text = check(path, name, changes)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return sources_mod.load_all(path)[name]
