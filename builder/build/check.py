"""`variant build NAME --check`: build the variant again elsewhere and compare the bytes.

A variant's hash promises that two builds of it are the same build (plan/repro.py keeps paths
and clocks out of the bytes). The check holds a published build to that promise the way
`nix build --check` does: the catalogue's spec files are copied to a scratch catalogue at
another path, with a state folder of its own (worktrees, build folders, dependencies rebuilt;
the source mirrors cloned from the catalogue's, sharing their objects, so the source comes from
the same origin and the hash is the same), and the variant is built there with an empty compile
cache ("empty"), or with the catalogue's compile caches, local and remote ("cache": a cached
object must be the same bytes as a fresh one). Every published file's sha256 is then compared
with the manifest's.

The outcome is written into the published manifest (`reproducible`: "checked DATE", or
"differs: FILES"); the report shows it. Files that differ are kept beside the state folder
(check/NAME/) for diffoscope, and the first section of each that differs is named.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import git
from ..ccache import ccache
from ..clock import now_iso
from ..errors import UserError
from ..layout import Layout
from ..lock import hold
from ..plan import plan as plan_mod
from ..publish import manifest as manifest_file
from ..tempdirs import folder
from ..verify import elfdiff
from . import pipeline as build_mod

Say = Callable[[str], None]
MODES = ("empty", "cache")
# What a variant's build reads from the catalogue; nothing else is copied.
CATALOGUE = ("variants", "patches", "toolchains", "sources.toml", "history.toml")


@dataclass(frozen=True)
class Difference:
    file: str  # as published: bin/NAME, or a runtime file's path
    section: str  # the first ELF section that differs, or what else does
    kept: Path | None  # the rebuilt file, kept for a closer look (None: the rebuild has none)


@dataclass(frozen=True)
class Outcome:
    name: str
    published: Path  # the checked build's folder (dist/NAME resolved)
    mode: str
    files: int
    differences: tuple[Difference, ...]
    seconds: float
    ccache: dict[str, Any]
    checked_at: str  # once: the manifest and --json say the same verdict

    @property
    def verdict(self) -> str:
        if not self.differences:
            how = "an empty compile cache" if self.mode == "empty" else "from the caches"
            return f"checked {self.checked_at} ({how})"
        return "differs: " + ", ".join(d.file for d in self.differences)


def published(manifest: dict[str, Any]) -> dict[str, str]:
    """Published file -> sha256, as the manifest records them."""
    files = {f"bin/{b['name']}": b.get("sha256", "") for b in manifest.get("binaries", [])}
    files |= {str(f.get("name")): f.get("sha256", "") for f in manifest.get("files", []) or []}
    return files


@contextlib.contextmanager
def _scratch(layout: Layout, mode: str, say: Say) -> Iterator[Layout]:
    with folder(layout.home, "check", say) as where:
        root = where / "catalogue"
        root.mkdir()
        for name in (*CATALOGUE, *(("catalogue.toml",) if mode == "cache" else ())):
            src = layout.root / name
            if src.is_dir():
                shutil.copytree(src, root / name, symlinks=True)
            elif src.is_file():
                shutil.copy2(src, root / name)
        scratch = Layout(root=root, home=root / ".variant", mirror_dirs=layout.mirror_dirs)
        scratch.home.mkdir()
        # The same origin as the catalogue's build (it is in the hash), without a second download:
        # git checks every object by its id.
        for mirror in sorted((layout.home / "mirrors").glob("*.git")):
            git.git("clone", "-q", "--mirror", "--shared", mirror, scratch.home / "mirrors" / mirror.name)
        # Downloads are checked against their pins wherever they are: shared, not fetched again.
        (scratch.home / "downloads").symlink_to(layout.downloads, target_is_directory=True)
        if mode == "cache":
            (scratch.home / "ccache").symlink_to(layout.ccache_dir, target_is_directory=True)
        before = os.environ.get(ccache.ENV)
        if mode == "empty":
            os.environ[ccache.ENV] = "off"  # no remote store either: every object compiled here
        try:
            yield scratch
        finally:
            if mode == "empty":
                if before is None:
                    os.environ.pop(ccache.ENV, None)
                else:
                    os.environ[ccache.ENV] = before


def check(layout: Layout, name: str, mode: str, opts: build_mod.Options, say: Say) -> Outcome:
    """Build `name` (if it is not up to date), rebuild it elsewhere, compare, record the verdict."""
    if mode not in MODES:
        raise UserError(f"--check={mode}: expected one of {', '.join(MODES)}")
    first = build_mod.build(layout, name, opts, say)
    name = first.name
    built = (layout.dist / name).resolve()  # this build's folder: the verdict is about it alone
    want = published(first.manifest)
    kept = layout.home / "check" / name
    shutil.rmtree(kept, ignore_errors=True)

    def keep(file: str, rebuilt: Path) -> Path:
        """The rebuilt file, kept for a closer look once the scratch catalogue is gone."""
        (kept / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(rebuilt, kept / file)
        return kept / file

    with _scratch(layout, mode, say) as scratch:
        cache = "an empty compile cache" if mode == "empty" else "the catalogue's compile caches"
        planned = plan_mod.make(scratch, name, offline=opts.offline).hash
        if planned != first.manifest.get("hash"):
            raise UserError(
                f"{name}: the scratch catalogue resolves to another hash ({planned[:12]} vs "
                f"{str(first.manifest.get('hash'))[:12]}): the build depends on something outside the "
                "catalogue's spec files and mirrors; nothing was built"
            )
        say(f"{name}: building again in {scratch.root}, with {cache}")
        again = build_mod.build(scratch, name, dataclasses.replace(opts, force=True), say)
        got = published(again.manifest)
        differences = []
        for file, digest in sorted(want.items()):
            if got.get(file) == digest:
                continue
            mine, theirs = built / file, scratch.dist / name / file
            if file not in got or not theirs.is_file():
                differences.append(Difference(file, "missing from the rebuild", None))
                continue
            differences.append(Difference(file, elfdiff.first_difference(mine, theirs), keep(file, theirs)))
        for file in sorted(set(got) - set(want)):
            rebuilt = keep(file, scratch.dist / name / file)
            differences.append(Difference(file, "not in the published build", rebuilt))
    seconds = float(again.manifest.get("build_seconds", 0))
    counts = dict(again.manifest.get("ccache") or {})
    out = Outcome(name, built, mode, len(want), tuple(differences), seconds, counts, now_iso())
    record(layout, name, built, str(first.manifest.get("hash")), out.verdict)
    return out


def record(layout: Layout, name: str, folder_: Path, plan_hash: str, verdict: str) -> None:
    """The verdict into the checked build's manifest, replaced whole (a reader sees the old or the
    new), under the variant's build lock; not if another build has replaced that folder meanwhile."""
    with hold(layout.lock(f"variant-{name}"), f"the build of {name}", say=lambda _: None):
        path = folder_ / manifest_file.MANIFEST
        if not path.is_file() or (layout.dist / name).resolve() != folder_:
            raise UserError(
                f"{name}: rebuilt meanwhile; the verdict ({verdict}) is about {folder_}, not recorded"
            )
        data = manifest_file.load(path, name)
        if data.get("hash") != plan_hash:
            raise UserError(f"{path}: another build's manifest; the verdict ({verdict}) is not recorded")
        data["reproducible"] = verdict
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w") as fh:
                fh.write(json.dumps(data, indent=2) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
