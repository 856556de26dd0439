"""A published build's manifest.json read back: every field a reader uses is checked here, once.

publish.py writes dist/.builds/<folder>/manifest.json; bench, smoke, profile,
the report, the PR document and the wheel's smoke read it back through
dist/<variant>. By then it is a file on disk that may have been edited, cut
short or copied from another tool: a list instead of an object, no
source.commit, an object where a text belongs, a runtime env name holding '='
(which Popen refuses with a ValueError). Unchecked, each ends in a KeyError or
AttributeError in whichever reader comes first, or in an IntegrityError when a
measurement is stored. Checked here, each is a UserError naming the file and
the field, with the way out: rebuild the variant, which writes a whole one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..layout import Layout
from ..tomlfile import ENV_NAME

MANIFEST = "manifest.json"

_WORDS: dict[type, str] = {str: "a text", dict: "an object", list: "a list"}
_ABSENT = object()  # a field the manifest does not have at all

Bad = Callable[[str, str, Any], UserError]


def read(layout: Layout, name: str) -> dict[str, Any] | None:
    """dist/<name>'s manifest, checked; None when the variant is not built (no manifest there)."""
    path = layout.dist / name / MANIFEST
    if not path.exists():
        return None
    return load(path, name)


def load(path: Path, name: str) -> dict[str, Any]:
    """The manifest at path, published for variant `name`: a UserError if it is not a whole one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); rebuild it (`variant build {name}`)") from None
    return check(data, path, name)


def check(data: Any, path: Path, name: str) -> dict[str, Any]:
    """data itself when every field a reader of the manifest uses is there and of its type."""

    def bad(field: str, expected: str, value: Any) -> UserError:
        return UserError(
            f"{path}: {field}: expected {expected}, found {_shown(value)} (a damaged manifest, or "
            f"not this tool's); rebuild it (`variant build {name}`)"
        )

    if not isinstance(data, dict):
        raise bad("the manifest", "a JSON object", data)
    for key in ("variant", "hash"):
        _get(data, key, key, str, bad)
    if data["variant"] != name:
        raise bad("variant", f"{name!r} (it is published as dist/{name})", data["variant"])
    source = _get(data, "source", "source", dict, bad)
    for key in ("name", "commit", "origin"):
        _get(source, key, f"source.{key}", str, bad)
    _get(data, "toolchain", "toolchain", dict, bad)
    _items(data, "binaries", ("name",), bad, required=False)
    _items(data, "patches", ("series", "file", "sha256"), bad, required=False)
    for i, dep in enumerate(_items(data, "deps", ("name",), bad, required=False)):
        _get(dep, "worktree", f"deps[{i}].worktree", str, bad, required=False, null=True)
    _get(data, "cmake", "cmake", dict, bad, required=False)
    _get(data, "instrument", "instrument", str, bad, required=False)
    _get(data, "build_type", "build_type", str, bad, required=False, null=True)
    _get(data, "reproducible", "reproducible", str, bad, required=False)
    runtime = _get(data, "runtime", "runtime", dict, bad, required=False, null=True) or {}
    env = _get(runtime, "env", "runtime.env", dict, bad, required=False, null=True) or {}
    for key, value in env.items():
        if not ENV_NAME.fullmatch(key):
            raise bad(f"runtime.env.{key}", "a variable name (letters, digits and _)", key)
        if not isinstance(value, str) or "\0" in value:
            raise bad(f"runtime.env.{key}", "a text without NUL bytes", value)
    return data


def _get(
    where: dict[str, Any], key: str, field: str, kind: type, bad: Bad, *, required: bool = True,
    null: bool = False,
) -> Any:  # fmt: skip
    """where[key] when it is of kind (None when it may be left out, or be null, and is)."""
    value = where.get(key, _ABSENT)
    if (value is _ABSENT and not required) or (value is None and null):
        return None
    if not isinstance(value, kind):
        raise bad(field, _WORDS[kind] + (" or null" if null else ""), value)
    return value


def _items(
    data: dict[str, Any], key: str, texts: tuple[str, ...], bad: Bad, *, required: bool = True
) -> list[dict[str, Any]]:
    """data[key], a list of objects each with the text fields `texts`."""
    items: list[Any] = _get(data, key, key, list, bad, required=required) or []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad(f"{key}[{i}]", "an object", item)
        for field in texts:
            _get(item, field, f"{key}[{i}].{field}", str, bad)
    return items


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    kind = {dict: "an object", list: "a list", str: "the text", bool: "the boolean"}.get(type(value), "")
    text = json.dumps(value)
    return f"{kind or 'the number'} {text if len(text) <= 60 else text[:60] + '...'}"
