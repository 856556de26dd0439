"""One smoke finding: which variant, which program, whether it passed, and how to rerun it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    variant: str
    binary: str
    ok: bool
    detail: str
    command: str = ""
    tail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()
