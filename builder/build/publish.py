"""Atomic publication to dist/<variant>/ and the manifest that says what a binary is.

dist/<variant> is a symlink to a complete folder dist/.builds/<variant>-<hash>-<nonce>.
The new folder is written in full first, then the link is replaced with one
rename(2), so a reader (or a build killed with SIGKILL) sees either the old
variant or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..digest import sha256_file
from ..layout import Layout

MANIFEST = "manifest.json"


def read_manifest(layout: Layout, name: str) -> dict[str, Any] | None:
    path = layout.dist / name / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def status(layout: Layout, name: str, plan_hash: str) -> str:
    """'not built', 'up to date' or 'stale'."""
    manifest = read_manifest(layout, name)
    if manifest is None:
        return "not built"
    bins = layout.dist / name / "bin"
    present = all((bins / b["name"]).is_file() for b in manifest.get("binaries", []))
    return "up to date" if manifest.get("hash") == plan_hash and present else "stale"


def publish(layout: Layout, name: str, plan_hash: str, files: list[Path], manifest: dict[str, Any]) -> Path:
    builds = layout.dist / ".builds"
    builds.mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex[:8]
    final = builds / f"{name}-{plan_hash[:12]}-{nonce}"
    stage = final.with_name(final.name + ".tmp")
    (stage / "bin").mkdir(parents=True)
    entries = []
    for f in files:
        dest = stage / "bin" / f.name
        shutil.copy2(f, dest)
        entries.append({"name": f.name, "sha256": sha256_file(dest), "size": dest.stat().st_size})
    manifest = {**manifest, "binaries": entries}
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.rename(stage, final)

    link = layout.dist / name
    tmp_link = layout.dist / f".{name}.{nonce}.link"
    os.symlink(os.path.relpath(final, layout.dist), tmp_link)
    if link.is_dir() and not link.is_symlink():
        # A plain folder (copied in by hand): move it aside, it cannot be renamed over.
        os.rename(link, builds / f"{name}-previous-{nonce}")
    os.replace(tmp_link, link)
    _clean(builds, name, keep=final)
    return link


def _clean(builds: Path, name: str, keep: Path) -> None:
    """Remove this variant's older folders and the leftovers of killed builds."""
    for old in builds.glob(f"{name}-*"):
        if old == keep:
            continue
        # Other variants may share the prefix (futex-gcc vs futex-gcc-lto):
        # ours are name-<12 hex>-<nonce>[.tmp] or name-previous-<nonce>.
        rest = old.name[len(name) + 1 :].removesuffix(".tmp").split("-")
        if len(rest) == 2 and (len(rest[0]) == 12 or rest[0] == "previous"):
            shutil.rmtree(old, ignore_errors=True)
