"""`variant patch status`: where a series stands upstream (state and PR link), kept in series.toml.

The file is edited in place, line by line, so comments, order and the
multi-line notes stay as the person wrote them: a key that exists is
rewritten on its own line, a new one goes after `status` (or `upstream`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UserError
from . import series as series_mod


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for what URLs and states hold


def set_keys(path: Path, values: dict[str, str]) -> str:
    """Set top-level string keys of series.toml; returns the new text (also written)."""
    lines = path.read_text().splitlines(keepends=True)
    first_table = next((i for i, ln in enumerate(lines) if re.match(r"^\s*\[", ln)), len(lines))
    for key, value in values.items():
        line = f"{key:<11} = {_toml_str(value)}\n" if len(key) < 11 else f"{key} = {_toml_str(value)}\n"
        rx = re.compile(rf"^{re.escape(key)}\s*=")
        at = next((i for i in range(first_table) if rx.match(lines[i])), None)
        if at is not None:
            if '"""' in lines[at] or "'''" in lines[at]:
                raise UserError(f"{path}: {key} is a multi-line string; edit it by hand")
            lines[at] = line
            continue
        anchor = next(
            (i for k in ("status", "pr", "upstream", "description") for i in range(first_table)
             if re.match(rf"^{k}\s*=", lines[i])),
            None,
        )  # fmt: skip
        at = anchor + 1 if anchor is not None else 0
        lines.insert(at, line)
        first_table += 1
    text = "".join(lines)
    path.write_text(text)
    return text


def set_status(series_dir: Path, *, state: str | None, pr: str | None) -> dict[str, str]:
    path = series_dir / "series.toml"
    values: dict[str, str] = {}
    if state is not None:
        if state not in series_mod.STATUSES:
            raise UserError(f'--state "{state}": expected one of {", ".join(series_mod.STATUSES)}')
        values["status"] = state
    if pr is not None:
        if not re.fullmatch(r"https?://\S+", pr):  # fullmatch: "$" would pass a trailing newline
            raise UserError(f'--pr "{pr}": expected the pull request\'s URL')
        values["pr"] = pr
    if values:
        set_keys(path, values)
    return values
