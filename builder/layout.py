"""Where things live: the catalogue (source files) and the state folder (everything else)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError


def find_root(start: Path, override: str | None = None) -> Path:
    """The nearest folder upward from start that holds variants/, the way git finds .git."""
    if override:
        root = Path(override).expanduser().resolve()
        if not (root / "variants").is_dir():
            raise UserError(f"{root}: not a catalogue (it has no variants/ folder)")
        return root
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / "variants").is_dir():
            return folder
    raise UserError(
        f"no catalogue found: no variants/ folder in {here} or any parent (use --root DIR or VARIANT_ROOT)"
    )


def mirror_dirs(given: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """Folders holding pinned archives: --mirror DIR (repeatable), else VARIANT_MIRRORS (a path list)."""
    raw = list(given) or [d for d in os.environ.get("VARIANT_MIRRORS", "").split(os.pathsep) if d]
    return tuple(Path(d).expanduser().resolve() for d in raw)


@dataclass(frozen=True)
class Layout:
    root: Path
    home: Path
    mirror_dirs: tuple[Path, ...] = ()

    @classmethod
    def at(cls, root: Path, home: str | None = None, mirrors: tuple[str, ...] = ()) -> Layout:
        home = home or os.environ.get("VARIANT_HOME")
        return cls(
            root=root,
            home=Path(home).expanduser().resolve() if home else root / ".variant",
            mirror_dirs=mirror_dirs(mirrors),
        )

    # --- the catalogue --------------------------------------------------
    @property
    def variants_dir(self) -> Path:
        return self.root / "variants"

    @property
    def patches_dir(self) -> Path:
        return self.root / "patches"

    @property
    def toolchains_dir(self) -> Path:
        return self.root / "toolchains"

    @property
    def sources_file(self) -> Path:
        return self.root / "sources.toml"

    @property
    def history_file(self) -> Path:
        """The offline histories of sources (source/history.py): the versions around each pin."""
        return self.root / "history.toml"

    @property
    def config_file(self) -> Path:
        """Settings of the catalogue as a whole: [ccache] remote."""
        return self.root / "catalogue.toml"

    @property
    def runners_file(self) -> Path:
        """The CI runners the matrix builds on."""
        return self.root / "runners.toml"

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    # --- state ------------------------------------------------------------
    def mirror(self, source: str) -> Path:
        return self.home / "mirrors" / f"{source}.git"

    @property
    def downloads(self) -> Path:
        # Shareable between homes (tests, benchmarks, several catalogues), like pip's cache.
        shared = os.environ.get("VARIANT_DOWNLOADS")
        return Path(shared).expanduser().resolve() if shared else self.home / "downloads"

    @property
    def ccache_dir(self) -> Path:
        return self.home / "ccache"

    def profiles(self, run_id: int | None = None) -> Path:
        """Where `variant profile` keeps its files: one folder per run id of the results database."""
        root = self.home / "profiles"
        return root if run_id is None else root / str(run_id)

    @property
    def work_root(self) -> Path:
        return self.home / "work"

    def work(self, variant: str) -> Path:
        return self.work_root / variant

    def worktree(self, variant: str) -> Path:
        return self.work(variant) / "src"

    def build_dir(self, variant: str) -> Path:
        return self.work(variant) / "build"

    def build_log(self, variant: str) -> Path:
        return self.work(variant) / "build.log"

    def series_work(self, series: str, source: str) -> Path:
        """State of one series' round trip: its edit worktree, a scratch worktree, edit.json."""
        return self.home / "series" / source / series

    def check_work(self, series: str, source: str) -> Path:
        """`variant patch check` builds here: under the work root, so ccache shares the variants' objects."""
        return self.work_root / ".check" / source / series

    def lock(self, name: str) -> Path:
        return self.home / "locks" / f"{name}.lock"
