"""A source at another version than its pin: a history snapshot (offline) or a git commit (online).

Offline, the versions are the entries of history.toml, each an sdist that
vendors one upstream commit. A snapshot is imported like the pinned sdist
(offline.import_tree: the same file gives the same root commit on any
machine, and the pinned entry's snapshot is the pin's own import), and only
when a command needs it. What makes them one history is a graft per imported
snapshot (`git replace --graft`) onto the newest older imported one, plus a
tag `history/<version>`: `git log history/0.3.30..history/0.3.36`,
range-diff and the patch-id search of a rebase then work offline, while the
commits themselves stay the same wherever they are imported, whatever else
was imported (the grafts are refs beside them, recomputed after each import).
Importing every older snapshot instead, to give each commit a real parent,
would download 1.4 GB of sdists to build the pin.

Online (a source without a history, as in the tests' fake upstreams), the
versions are the commits and tags of its git mirror.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .. import git
from ..errors import UserError
from ..layout import Layout
from ..lock import hold
from . import history as history_mod
from . import mirror as mirror_mod
from . import offline
from .history import Entry, History
from .sources import Pin, Say, Source

TAG_PREFIX = "refs/tags/history/"
REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # what may follow the @ of NAME@REF
LABEL_DIGITS = 12  # a git commit's label


@dataclass(frozen=True)
class Version:
    """One version of a source, and the source as it is at that version."""

    label: str  # the history's version ("0.3.30"), or a commit's first 12 hex digits
    source: Source
    date: str  # ISO date, or "" when not known before the commit is fetched
    entry: Entry | None = None  # the history entry, offline
    title: str = ""  # the commit's subject, or what the snapshot vendors

    @property
    def commit(self) -> str:
        return self.source.commit


def histories(layout: Layout, sources: dict[str, Source]) -> dict[str, History]:
    return history_mod.load(layout.history_file, sources)


def source_at(src: Source, hist: History, entry: Entry) -> Source:
    """src as it is at entry: built from that sdist. The pinned entry gives src itself (same hash)."""
    pin = Pin("pypi", f"{hist.pypi}=={entry.version}", hist.subdir, entry.sha256)
    if src.offline == pin:
        return src
    return dataclasses.replace(src, file=hist.file, commit=entry.commit, tag=None, offline=pin)


def pinned_entry(src: Source, hist: History) -> Entry | None:
    for e in hist.entries:
        if src.offline is not None and e.sha256 == src.offline.sha256:
            return e
    return next((e for e in hist.entries if src.commit.startswith(e.commit)), None)


def imported(layout: Layout, src: Source, hist: History) -> dict[str, str]:
    """version -> snapshot commit, for the entries already in the mirror."""
    mirror = layout.mirror(src.name)
    out = {}
    for e in hist.entries:
        pin = source_at(src, hist, e).offline
        assert pin is not None
        if (commit := offline.imported_commit(mirror, pin)) is not None:
            out[e.version] = commit
    return out


def ensure(layout: Layout, src: Source, hist: History, entries: list[Entry], say: Say) -> dict[str, str]:
    """Each entry's snapshot in the mirror (downloaded and imported once), linked; version -> commit."""
    with hold(layout.lock(f"source-{src.name}"), f"the {src.name} mirror", say=say):
        have = imported(layout, src, hist)
        missing = [e for e in entries if e.version not in have]
        for i, e in enumerate(missing, 1):
            say(f"{src.name}: importing {hist.pypi} {e.version} ({i}/{len(missing)}), vendoring {e.commit}")
            have[e.version] = offline.import_tree(layout, source_at(src, hist, e), say)
        link(layout, src, hist, have)  # cheap, and heals tags or grafts lost to a crash mid-import
    return {e.version: have[e.version] for e in entries}


def link(layout: Layout, src: Source, hist: History, have: dict[str, str]) -> None:
    """Tags and grafts: each imported snapshot's parent is the newest older imported one."""
    mirror = layout.mirror(src.name)
    previous = None
    for e in hist.entries:
        commit = have.get(e.version)
        if commit is None:
            continue
        git.git("update-ref", TAG_PREFIX + e.version, commit, git_dir=mirror)
        replaced = f"refs/replace/{commit}"
        if previous is None:
            git.git("update-ref", "-d", replaced, git_dir=mirror, check=False)
        else:
            # -f: the parent changes when a snapshot between the two is imported later
            git.git("replace", "-f", "--graft", commit, previous, git_dir=mirror)
        previous = commit


def resolve(layout: Layout, src: Source, ref: str, hist: History | None, *, fetch: bool, say: Say) -> Version:
    """The version ref names: a history entry (version or commit prefix), else a git tag or commit.

    Nothing is downloaded or imported here; `fetch` lets a ref missing from the mirror be looked
    for in the source's git remote (branches and tags).
    """
    if not REF.fullmatch(ref):
        raise UserError(f'{src.name}: invalid version "{ref}" (a version, tag or commit: {REF.pattern})')
    unknown: UserError | None = None
    if hist is not None:
        try:
            return _entry_version(src, hist, hist.find(ref))
        except UserError as exc:  # online, any commit or tag of the real history will do
            unknown = exc
    mirror = layout.mirror(src.name)
    commit = _in_mirror(layout, src, ref)
    if commit is None and fetch:
        if not mirror.exists():
            mirror_mod.ensure_base(layout, src, offline=False, say=say)
        say(f"{src.name}: fetching branches and tags from {src.url} to find {ref}")
        git.git(
            "fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
            git_dir=mirror, check=False,
        )  # fmt: skip
        commit = _in_mirror(layout, src, ref)
    if commit is None:
        if unknown is not None:
            raise unknown  # it names the history's versions
        raise UserError(
            f"{src.name}: no tag or commit {ref!r} in its mirror {mirror} "
            f"(`variant upstream list {src.name}` shows the known versions)"
        )
    return _git_version(layout, src, commit)


def line(layout: Layout, src: Source, good: Version, bad: Version, hist: History | None) -> list[Version]:
    """The versions from good to bad, both included, oldest first: history entries, or the
    first-parent commits of good..bad. Equal or reversed ends are a UserError."""
    if hist is not None and good.entry is not None and bad.entry is not None:
        return [_entry_version(src, hist, e) for e in hist.between(good.label, bad.label)]
    mirror = layout.mirror(src.name)
    if good.commit == bad.commit:
        raise UserError(f"{src.name}: {good.label} and {bad.label} are one commit")
    ancestor = git.git("merge-base", "--is-ancestor", good.commit, bad.commit, git_dir=mirror, check=False)
    if ancestor.returncode != 0:
        newer = git.git("merge-base", "--is-ancestor", bad.commit, good.commit, git_dir=mirror, check=False)
        why = "is newer than" if newer.returncode == 0 else "is not an ancestor of"
        raise UserError(f"{src.name}: {good.label} {why} {bad.label}; the good version comes first")
    listed = git.git(
        "rev-list", "--first-parent", "--reverse", f"{good.commit}..{bad.commit}", git_dir=mirror
    ).stdout.split()
    return [good, *(_git_version(layout, src, c) for c in listed)]


def _in_mirror(layout: Layout, src: Source, ref: str) -> str | None:
    mirror = layout.mirror(src.name)
    if not mirror.exists():
        return None
    res = git.git("rev-parse", "--verify", "--quiet", ref + "^{commit}", git_dir=mirror, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def _git_version(layout: Layout, src: Source, commit: str) -> Version:
    shown = git.git("log", "-1", "--format=%cs %s", commit, git_dir=layout.mirror(src.name)).stdout.strip()
    date, _, subject = shown.partition(" ")
    at = src if commit == src.commit else dataclasses.replace(src, commit=commit, tag=None, offline=None)
    return Version(commit[:LABEL_DIGITS], at, date, title=subject)


def _entry_version(src: Source, hist: History, e: Entry) -> Version:
    return Version(e.version, source_at(src, hist, e), e.date.isoformat(), e, f"{hist.source} {e.commit}")


@dataclass(frozen=True)
class Known:
    """A row of `variant upstream list`."""

    label: str
    commit: str  # the upstream commit (as the history names it) or the tag's commit
    date: str
    imported: str | None  # the snapshot's commit in the mirror; for git, the commit when it is there
    pinned: bool

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def known(layout: Layout, src: Source, hist: History | None) -> list[Known]:
    """The versions a source can be built at, oldest first: its history, else its mirror's tags."""
    if hist is not None:
        have = imported(layout, src, hist)
        pin = pinned_entry(src, hist)
        return [Known(e.version, e.commit, e.date.isoformat(), have.get(e.version), e == pin)
                for e in hist.entries]  # fmt: skip
    mirror = layout.mirror(src.name)
    if not mirror.exists():
        return [Known(src.tag or src.commit[:LABEL_DIGITS], src.commit, "", None, True)]
    fmt = "%(refname:short)%00%(objectname)%00%(*objectname)%00%(creatordate:short)"
    res = git.git("for-each-ref", "--sort=creatordate", f"--format={fmt}", "refs/tags", git_dir=mirror)
    rows = []
    for line in res.stdout.splitlines():
        name, obj, peeled, date = line.split("\0")
        if name.startswith("history/"):
            continue
        commit = peeled or obj
        rows.append(Known(name, commit, date, commit, commit == src.commit))
    if not any(r.pinned for r in rows):
        there = _in_mirror(layout, src, src.commit)
        rows.append(Known(src.commit[:LABEL_DIGITS], src.commit, "", there, True))
    return rows
