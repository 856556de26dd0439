"""Atomic publication to dist/<variant>/ and the manifest that says what a binary is.

dist/<variant> is a symlink to a complete folder dist/.builds/<variant>-<hash>-<nonce>.
The new folder is written in full first, then the link is replaced with one
rename(2), so a reader (or a build killed with SIGKILL) sees either the old
variant or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..digest import sha256_file
from ..errors import UserError
from ..layout import Layout
from ..lock import try_exclusive
from . import manifest as manifest_file
from .manifest import MANIFEST


def read_manifest(layout: Layout, name: str) -> dict[str, Any] | None:
    """dist/<name>'s manifest if it is a whole one: a build takes a missing or damaged one alike, as
    nothing built, and publishes a new one (readers use manifest.read, which names what is wrong)."""
    try:
        return manifest_file.read(layout, name)
    except UserError:
        return None


def status(layout: Layout, name: str, plan_hash: str) -> str:
    """'not built', 'up to date' or 'stale'."""
    manifest = read_manifest(layout, name)
    if manifest is None:
        return "not built"
    bins = layout.dist / name / "bin"
    present = all((bins / b["name"]).is_file() for b in manifest.get("binaries", []))
    return "up to date" if manifest.get("hash") == plan_hash and present else "stale"


def check_place(layout: Layout, name: str) -> None:
    """dist/<name> is this tool's link or nothing: a folder or file a person put there is refused.

    Publishing replaces dist/<name>; what stands there that this tool did not
    make (it only ever makes a link into dist/.builds/) would be lost with it.
    """
    place = layout.dist / name
    if place.is_symlink() or not place.exists():
        return
    what = "folder" if place.is_dir() else "file"
    try:  # any manifest.json that looks like ours, whole or not
        found = json.loads((place / MANIFEST).read_text())
    except (OSError, ValueError):
        found = None
    copy = isinstance(found, dict) and found.get("tool_version") is not None
    raise UserError(
        f"{place}: a {what} this tool did not publish"
        + (" (a copy of a build: it holds a manifest.json)" if copy else "")
        + f"; building {name} publishes dist/{name} as a link to dist/.builds/ and would replace it. "
        f"Move it elsewhere (or remove it), then build {name} again; nothing was built"
    )


def in_use_lock(layout: Layout, folder: Path) -> Path:
    """The lock a reader (smoke, bench) holds shared on a published folder while it runs its binaries."""
    return layout.lock(f"dist-{folder.name}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    layout: Layout,
    name: str,
    plan_hash: str,
    files: list[Path],
    manifest: dict[str, Any],
    extra: dict[str, Path] | None = None,
) -> Path:
    """Write the variant's folder in full, make it durable, then swap dist/<name> onto it in one rename.

    After a power loss dist/<name> names either the old folder or the new one,
    and whichever it names holds binaries and a manifest that belong together.
    """
    check_place(layout, name)  # again, under the build lock: someone may have put it there meanwhile
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
        _fsync(dest)
        entries.append({"name": f.name, "sha256": sha256_file(dest), "size": dest.stat().st_size})
    shared = []
    for rel, src in sorted((extra or {}).items()):
        dest = stage / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        _fsync(dest)
        shared.append({"name": rel, "sha256": sha256_file(dest), "from": str(src)})
    manifest = {**manifest, "binaries": entries, "files": shared}
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    for path in (stage / MANIFEST, stage / "bin", stage):
        _fsync(path)
    os.rename(stage, final)
    _fsync(builds)

    link = layout.dist / name
    tmp_link = layout.dist / f".{name}.{nonce}.link"
    os.symlink(os.path.relpath(final, layout.dist), tmp_link)
    os.replace(tmp_link, link)
    _fsync(layout.dist)
    _clean(layout, name, keep=final)
    return link


def _ours(name: str, candidate: str) -> bool:
    """Other variants may share the prefix (futex-gcc vs futex-gcc-lto): ours are
    name-<12 hex>-<nonce>[.tmp]."""
    rest = candidate[len(name) + 1 :].removesuffix(".tmp").split("-")
    return len(rest) == 2 and len(rest[0]) == 12


def _clean(layout: Layout, name: str, keep: Path) -> None:
    """Remove this variant's older folders and the leftovers of killed builds.

    Runs under the variant's build lock, so no other publish of it is under
    way: a `.<name>.<nonce>.link` left behind was made by a build that died
    before its rename. A folder a smoke or bench is still running binaries
    from (its in-use lock is held) is left for a later publish to remove.
    """
    ours = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{8}}\.link")  # not another variant's
    for leftover in layout.dist.glob(f".{name}.*.link"):
        if ours.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)
    for old in (layout.dist / ".builds").glob(f"{name}-*"):
        if old == keep or not _ours(name, old.name):
            continue
        lock = in_use_lock(layout, old.with_suffix("") if old.suffix == ".tmp" else old)
        fd = try_exclusive(lock)
        if fd is None:
            continue
        try:
            shutil.rmtree(old, ignore_errors=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
