"""`variant pin SOURCE REF`: move a source's pin and bring the catalogue along.

In order: every series with a port for the source is rebased onto the new
version (patch/rebase.py: upstreamed patches dropped and named, the rest
applied three-way, the patch files refreshed and re-pinned); a series that
conflicts is put back as it was and its variants are reported as blocked,
nothing else stops. Then the source's entry in sources.toml is rewritten
(source/pinfile.py: that entry only, comments kept), every variant of the
source is rebuilt through the shared cache and smoked, and the caller re-runs
the questions that measure them. The bump report (report.py) says all of it.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from .. import git
from ..build import pipeline
from ..errors import BuildError, CommandError, PatchError, UserError, VariantError
from ..layout import Layout
from ..lock import hold
from ..patch import edit as edit_mod
from ..patch import rebase as rebase_mod
from ..patch import series as series_mod
from ..smoke import smoke
from ..source import pinfile, versions
from ..source import sources as sources_mod
from ..source.history import History
from ..source.pinfile import Change
from ..source.sources import Source
from ..source.versions import Version
from ..spec import variant as spec
from .bisect import first_line
from .probe import Say


@dataclass(frozen=True)
class Bump:
    source: Source  # as pinned now
    old: str  # the pinned version's label
    new: Version
    changes: dict[str, Change]
    series: tuple[str, ...]  # with a port for the source
    variants: tuple[tuple[str, tuple[str, ...]], ...]  # each variant of the source and its series


@dataclass
class Outcome:
    series: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> state, detail, upstreamed
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> state, seconds, ccache, smoke
    rebuild_seconds: float = 0.0


def label_of(src: Source, hist: History | None) -> str:
    entry = versions.pinned_entry(src, hist) if hist else None
    return entry.version if entry else (src.tag or src.commit[:12])


def changes_for(src: Source, v: Version, hist: History | None) -> dict[str, Change]:
    """sources.toml's keys for the source at v: the sdist's pin for a history version; for a git
    commit, no offline pin (the old one vendors another tree)."""
    e = v.entry
    if e is not None and hist is not None:
        return {
            "commit": Change(e.commit),
            "tag": Change(e.tag, comment=e.date.isoformat()) if e.tag else Change(None),
            "pypi": Change(f"{hist.pypi}=={e.version}"),
            "archive": Change(None),
            "subdir": Change(hist.subdir),
            "sha256": Change(e.sha256),
        }
    return {"commit": Change(v.commit), "tag": Change(None), "pypi": Change(None), "archive": Change(None),
            "subdir": Change(None), "sha256": Change(None)}  # fmt: skip


def prepare(layout: Layout, name: str, ref: str, *, offline: bool, say: Say) -> Bump:
    srcs = sources_mod.load_all(layout.sources_file)
    if name not in srcs:
        raise UserError(f'unknown source "{name}" (in {layout.sources_file})')
    src = srcs[name]
    hist = versions.histories(layout, srcs).get(name)
    new = versions.resolve(layout, src, ref, hist, fetch=not offline, say=say)
    old = label_of(src, hist)
    if new.source.identity() == src.identity():
        raise UserError(f"{name} is pinned to {new.label} already")
    where = layout.patches_dir
    series = tuple(
        s for s in series_mod.available(where)
        if series_mod.header(where, s, referenced_from=where / s, key="").supports(name)
    )  # fmt: skip
    mine = []
    for v in spec.names(layout.variants_dir):
        if not spec.is_mixin(v) and (resolved := spec.resolve(layout.variants_dir, v)).source == name:
            mine.append((v, tuple(p for p in resolved.patches if p in series)))
    changes = changes_for(src, new, hist)
    pinfile.check(layout.sources_file, name, changes)  # before anything is rebased
    for s in series:  # a person's unfinished work in an edit worktree stops the bump before it starts
        wt = edit_mod.workspace(layout, s, name).worktree
        if (wt / ".git").exists():
            edit_mod.check_clean(wt, "a pin")
    return Bump(src, old, new, changes, series, tuple(mine))


def diff(layout: Layout, bump: Bump) -> str:
    text = layout.sources_file.read_text()
    new = pinfile.rewrite(text, bump.source.name, bump.changes)
    name = layout.sources_file.name
    return "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), name, name))


def onto(layout: Layout, bump: Bump, say: Say) -> str:
    """The new version's commit in the mirror (a snapshot imported when it is one)."""
    v, src = bump.new, bump.source
    if v.entry is None:
        return v.commit
    hist = versions.histories(layout, sources_mod.load_all(layout.sources_file))[src.name]
    return versions.ensure(layout, src, hist, [v.entry], say)[v.entry.version]


def rebase_all(layout: Layout, bump: Bump, commit: str, out: Outcome, *, offline: bool, say: Say) -> None:
    for name in bump.series:
        try:
            r = rebase_mod.rebase(layout, name, bump.source.name, commit, offline=offline, say=say)
        except VariantError as exc:  # a conflict, or anything else: this series only
            _put_back(layout, name, bump.source.name, offline, say)
            state = "conflict" if isinstance(exc, PatchError) else "failed"
            out.series[name] = {"state": state, "detail": first_line(exc, 1000), "upstreamed": []}
            continue
        gone = [f"{u.subject} ({(u.commit or '?')[:12]}: {u.upstream_subject or u.how})"
                for u in r.upstreamed]  # fmt: skip
        state = "applied" if r.kept else "upstreamed"
        detail = f"{len(r.kept)} patch(es) applied" + (f", {len(gone)} upstreamed" if gone else "")
        out.series[name] = {"state": state, "detail": detail, "upstreamed": gone}


def _put_back(layout: Layout, name: str, source: str, offline: bool, say: Say) -> None:
    """A conflicted rebase undone: the edit worktree back on the series' files at the old pin."""
    wt = edit_mod.workspace(layout, name, source).worktree
    git.git("am", "--abort", cwd=wt, check=False, neutral=True)
    edit_mod.edit(layout, name, source, offline=offline, reset=True, say=say)


def rebuild(layout: Layout, bump: Bump, out: Outcome, *, offline: bool, every: bool, say: Say) -> None:
    """The variants of the source that were built (all of them with every), then smoked."""
    blocked = {s for s, r in out.series.items() if r["state"] in ("conflict", "failed")}
    merged = {s for s, r in out.series.items() if r["state"] == "upstreamed"}
    started = time.monotonic()
    for name, uses in bump.variants:
        if not every and not (layout.dist / name).exists():
            out.variants[name] = {
                "state": "not built",
                "detail": "not built before the pin (--all builds it)",
            }
            continue
        if stuck := [s for s in uses if s in blocked]:
            out.variants[name] = {"state": "blocked", "detail": f"series {', '.join(stuck)} does not apply"}
            continue
        if gone := [s for s in uses if s in merged]:
            # the series has no patch left for the source: the spec must stop naming it
            why = f"series {', '.join(gone)} is upstream now; remove it from the variant's patches"
            out.variants[name] = {"state": "blocked", "detail": why}
            continue
        try:
            built = pipeline.build(layout, name, pipeline.Options(offline=offline), say)
        except (BuildError, CommandError, UserError) as exc:  # one variant's failure stops no other
            out.variants[name] = {"state": "build failed", "detail": first_line(exc)}
            continue
        if built.action != "built":  # its manifest's cost is the earlier build's, not this pin's
            out.variants[name] = {"state": built.action}
            continue
        m = built.manifest
        cc = m.get("ccache") or {}
        out.variants[name] = {"state": built.action, "seconds": m.get("build_seconds"),
                              "hits": cc.get("hits"), "misses": cc.get("misses")}  # fmt: skip
    out.rebuild_seconds = round(time.monotonic() - started, 1)
    for name, row in out.variants.items():
        if row["state"] in ("built", "up to date"):
            try:
                failed = [c for c in smoke.smoke(layout, [name], None, say) if not c.ok]
            except VariantError as exc:
                row["smoke"] = f"error: {first_line(exc, 150)}"
                continue
            row["smoke"] = "ok" if not failed else f"failed: {failed[0].binary}: {failed[0].detail[:150]}"


def run(layout: Layout, bump: Bump, *, offline: bool, every: bool, say: Say) -> Outcome:
    """Rebase, rewrite the pin, rebuild and smoke (questions are the caller's: they run `variant bench`)."""
    out = Outcome()
    with hold(layout.lock(f"pin-{bump.source.name}"), f"the pin of {bump.source.name}", say=say):
        commit = onto(layout, bump, say)
        rebase_all(layout, bump, commit, out, offline=offline, say=say)
        pinfile.write(layout.sources_file, bump.source.name, bump.changes)
        say(f"{bump.source.name}: pinned to {bump.new.label} (was {bump.old}); rebuilding its variants")
        rebuild(layout, bump, out, offline=offline, every=every, say=say)
    return out


def report(bump: Bump, out: Outcome, questions: list[dict[str, Any]]) -> str:
    """The bump report: per series, per variant (build cost, smoke), per question (old run vs new)."""
    name = bump.source.name
    lines = [f"# {name}: {bump.old} -> {bump.new.label}", "",
             f"New pin: {bump.new.label} ({bump.new.date}, {bump.new.title or bump.new.commit})", "",
             "## Series", "", "| series | state | detail |", "|---|---|---|"]  # fmt: skip
    for s, r in out.series.items():
        lines.append(f"| {s} | {r['state']} | {r['detail']} |")
        lines += [f"|  | upstreamed | {u} |" for u in r["upstreamed"]]
    built = [r for r in out.variants.values() if r["state"] == "built"]
    lines += ["", "## Variants", "", f"Rebuilt in {out.rebuild_seconds:g} s ({len(built)} built).", "",
              "| variant | state | build s | ccache hits / misses | smoke |", "|---" * 5 + "|"]  # fmt: skip
    for v, r in out.variants.items():
        cache = f"{r['hits']} / {r['misses']}" if r.get("hits") is not None else "-"
        seconds = r.get("seconds")
        state = r["state"] + (f": {r['detail']}" if r.get("detail") else "")
        cells = (v, state, "-" if seconds is None else str(seconds), cache, r.get("smoke", "-"))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "## Questions", ""]
    if not questions:
        lines.append("No question of questions.toml was re-run (none measures only these variants, or "
                     "--no-questions).")  # fmt: skip
    for q in questions:
        lines += [f"### {q['name']}", "", q["text"], ""]
        old, new = q.get("old_run"), q["new_run"]
        if new is None:
            lines.append("Not answered at the new pin:")
        elif old:
            lines.append(f"Run {old} (old pin) against run {new} (new pin); two runs, not interleaved:")
        else:
            lines.append(f"No stored run before the bump; run {new} is the first.")
        lines += ["", *q["rows"], ""]
    return "\n".join(lines) + "\n"
