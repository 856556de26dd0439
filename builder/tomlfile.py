"""Reading and validating TOML files so that every error names file, key path and expectation."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import SpecError

Table = dict[str, Any]

# The one rule for names that reach paths, branches, CI job names and shell lines: variants,
# sources, runners. Always checked with fullmatch: re.match's "$" also matches before a
# trailing newline, which would let "name\n" through.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
NAME = re.compile(NAME_PATTERN, re.ASCII)
NAME_RULE = "ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"


def load(path: Path) -> Table:
    """Parse a TOML file; syntax errors carry tomllib's line and column."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError(path, None, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, None, f"invalid TOML: {exc}") from None


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for a close match, else a list of what is allowed."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if choices and len(choices) <= 12:
        return " (expected one of: " + ", ".join(choices) + ")"
    return ""


def check_keys(path: Path, table: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            raise SpecError(path, prefix + key, f'unknown key "{key}"' + suggest(key, allowed))


def _typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def get_str(path: Path, table: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(path, prefix + key, f"expected a string, got {_typename(value)}")
    return value


def get_bool(path: Path, table: Mapping[str, Any], key: str, prefix: str = "") -> bool | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise SpecError(path, prefix + key, f"expected true or false, got {_typename(value)}")
    return value


def get_enum(
    path: Path, table: Mapping[str, Any], key: str, choices: Iterable[str], prefix: str = ""
) -> str | None:
    value = get_str(path, table, key, prefix)
    choices = list(choices)
    if value is not None and value not in choices:
        raise SpecError(path, prefix + key, f'invalid value "{value}"' + suggest(value, choices))
    return value


def get_str_list(path: Path, table: Mapping[str, Any], key: str, prefix: str = "") -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise SpecError(path, prefix + key, f"expected an array of strings, got {_typename(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise SpecError(path, f"{prefix}{key}[{i}]", f"expected a string, got {_typename(item)}")
    return tuple(value)


def get_argv_list(
    path: Path, table: Mapping[str, Any], key: str, prefix: str = ""
) -> tuple[tuple[str, ...], ...]:
    """An array of argv arrays (for prebuild steps): never a shell string."""
    value = table.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(path, prefix + key, f"expected an array of argv arrays, got {_typename(value)}")
    steps = []
    for i, step in enumerate(value):
        if not isinstance(step, list) or not step or not all(isinstance(a, str) for a in step):
            raise SpecError(
                path,
                f"{prefix}{key}[{i}]",
                "expected a non-empty array of strings (an argv list; no shell is used)",
            )
        steps.append(tuple(step))
    return tuple(steps)


def get_table(path: Path, table: Mapping[str, Any], key: str, prefix: str = "") -> Table:
    value = table.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(path, prefix + key, f"expected a table, got {_typename(value)}")
    return value


def check_name(path: Path, key: str, name: str, what: str) -> None:
    """A SpecError unless name follows NAME_RULE (name and key shown with escapes: a newline, say)."""
    if not NAME.fullmatch(name):
        shown = json.dumps(name, ensure_ascii=False)
        key = key if key.isprintable() else json.dumps(key, ensure_ascii=False)
        raise SpecError(path, key, f"invalid {what} name {shown}: names are made of {NAME_RULE}")


def is_full_sha(value: str, length: int = 40) -> bool:
    return len(value) == length and all(c in "0123456789abcdef" for c in value)


# A cache variable, optionally with its type as -D takes it (NAME:STRING): a find_file() result
# given as a plain value is made absolute against the build folder, typed STRING it is kept.
CMAKE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*(:(BOOL|STRING|PATH|FILEPATH))?", re.ASCII)  # fullmatch
# An environment variable a program is given: Popen refuses a name with "=" (or NUL) in it.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)  # fullmatch: see NAME


def render_cmake_value(path: Path, key: str, value: object) -> str:
    """TOML value to a -D value: booleans become ON/OFF, integers their digits."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, int | str):
        return str(value)
    raise SpecError(path, key, f"expected a boolean, integer or string, got {type(value).__name__}")


def cmake_name(key: str) -> str:
    """The variable a cmake key sets: NAME of NAME:TYPE (CMAKE_NAME), and of NAME itself."""
    return key.split(":", 1)[0]


def render_cmake_table(path: Path, table: dict[str, Any], prefix: str) -> dict[str, str]:
    rendered: dict[str, str] = {}
    for name, value in table.items():
        if not CMAKE_NAME.fullmatch(name):
            raise SpecError(path, prefix + name, "not a valid CMake variable name")
        if twin := next((k for k in rendered if cmake_name(k) == cmake_name(name)), None):
            raise SpecError(path, prefix + name, f"{prefix}{twin} sets the same variable")
        rendered[name] = render_cmake_value(path, prefix + name, value)
    return rendered
