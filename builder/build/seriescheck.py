"""`variant patch check`: every patch of a series, in order, as a reviewer and a bisect would see it.

For patch k: the series up to k applies (`git am --3way`, apply.apply), base +
patches 1..k builds (so the series is bisectable), no compiler warning points
at a line patch k adds, and the review checks of patch.check pass
(whitespace, clang-format on added lines, `module : title` subject, a body).

The build uses the cheapest variant that carries the series: carrying no
other series, built before (its objects are in the shared ccache), fewest
targets. Its configuration (toolchain, options, flags, targets) is built in
a worktree of its own under the work root (.variant/work/.check/...), so
ccache's base_dir makes the variant's objects hits here; each prefix is an
incremental Ninja build of what the next patch changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import git
from ..errors import CommandError, PatchError, SpecError, UserError
from ..host import doctor
from ..layout import Layout
from ..patch import apply, repo
from ..patch import check as lint
from ..patch import edit as edit_mod
from ..patch.apply import Say
from ..patch.check import Finding
from ..plan import plan as plan_mod
from ..publish import publish
from ..source import mirror
from ..spec import variant as spec
from ..verify import warnings
from . import configure as cmake

COLUMNS = ("applies", "builds", "whitespace", "clang-format", "subject", "body")


@dataclass(frozen=True)
class PatchResult:
    index: int
    file: str
    subject: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def cell(self, check: str) -> str:
        f = next((f for f in self.findings if f.check == check), None)
        return "-" if f is None else ("ok" if f.ok else "FAIL")


@dataclass(frozen=True)
class Report:
    series: str
    variant: str
    base: str
    results: tuple[PatchResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def table(self) -> str:
        head = ["#", "patch", *COLUMNS]
        rows = [[str(r.index), r.file, *(r.cell(c) for c in COLUMNS)] for r in self.results]
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        lines = [
            "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]
        ]
        problems = [
            f"  {r.index} {f.check}: {f.detail}" for r in self.results for f in r.findings if not f.ok
        ]
        return "\n".join(lines + (["", "problems:", *problems] if problems else []))

    def as_dict(self) -> dict[str, object]:
        return {
            "series": self.series,
            "variant": self.variant,
            "base": self.base,
            "ok": self.ok,
            "patches": [
                {
                    "index": r.index,
                    "file": r.file,
                    "subject": r.subject,
                    "ok": r.ok,
                    "checks": [dataclasses.asdict(f) for f in r.findings],
                }
                for r in self.results
            ],
        }


def cheapest(layout: Layout, name: str, source: str) -> str:
    """The variant to build the series with (see the module's docstring)."""
    ranked = []
    for v in spec.names(layout.variants_dir):
        try:
            resolved = spec.resolve(layout.variants_dir, v)
        except SpecError:
            continue
        if name not in resolved.patches or resolved.source != source:
            continue
        try:
            p = plan_mod.make(layout, v)
        except UserError:
            continue
        built = publish.status(layout, v, p.hash) != "not built"  # stale too: its objects are cached
        ranked.append((len(resolved.patches) - 1, not built, len(resolved.targets), v))
    if not ranked:
        raise UserError(
            f"no variant in {layout.variants_dir} carries series {name} for {source}; "
            "add one (patches = [...]) or name one with --variant"
        )
    return min(ranked)[3]


def run(
    layout: Layout,
    name: str,
    source: str,
    *,
    variant: str | None,
    offline: bool,
    jobs: int | None,
    say: Say,
) -> Report:
    series = edit_mod.load_series(layout, name, source)
    doctor.require(("clang-format",), "variant patch check")
    vname = variant or cheapest(layout, name, source)
    plan = plan_mod.make(layout, vname)
    if plan.source.name != source:
        # a port for a nested source (llama.cpp-bitnet inside bitnet's tree) is applied there by
        # the build; check's worktree is the top source, where the port would not apply
        where = next((w for w, o in plan.source.nested if o == source), None)
        inside = f" (its tree holds {source} at {where}/)" if where else ""
        raise UserError(
            f"variant {vname} builds {plan.source.name}{inside}, not {source}: check applies and "
            f"builds a port on its own source only; `variant build {vname}` applies the {source} "
            "port in the nested tree and verifies it"
        )
    doctor.require(plan.requires, f"variant {vname}")
    pinned = mirror.ensure_base(layout, plan.source, offline=offline, say=say)
    base = pinned.commit
    work = layout.check_work(name, source)
    wt, branch = work / "src", f"check/{source}/{name}"
    mirror.ensure_worktree(layout, plan.source, wt, branch, pinned, say)
    failed_at, failure = None, ""
    try:
        head = apply.apply(wt, branch, base, (series,), say)
    except PatchError as exc:
        failed_at = next((i for i, p in enumerate(series.patches) if p.path.name in str(exc)), 0)
        failure = str(exc).splitlines()[0]
        prefix = dataclasses.replace(series, patches=series.patches[:failed_at])
        head = apply.apply(wt, branch, base, (prefix,), say) if failed_at else base
    commits = repo.commits(wt, base, head)
    env = dict(plan.ccache_env)
    env["CCACHE_STATSLOG"] = str(work / "ccache-stats.log")
    cplan = dataclasses.replace(plan, worktree=wt, build_dir=work / "build", ccache_env=tuple(env.items()))
    results = []
    configured = False
    for i, p in enumerate(series.patches):
        if failed_at is not None and i >= failed_at:
            applies = (
                Finding("applies", False, failure)
                if i == failed_at
                else Finding("applies", False, "not tried")
            )
            results.append(PatchResult(i + 1, p.path.name, p.subject, (applies,)))
            continue
        c = commits[i]
        git.git("checkout", "--quiet", "--detach", c.sha, cwd=wt)
        say(f"[{i + 1}/{len(series.patches)}] {p.path.name}: building with {vname}'s configuration")
        log_file = work / f"build-{i + 1}.log"
        log_file.unlink(missing_ok=True)
        try:
            if not configured:
                cmake.configure(cplan, log_file, say)
                configured = True
            ledger = cmake.build(cplan, log_file, jobs=jobs)
            added = lint.added_lines(wt, c.parents[0], c.sha)
            warned = warnings.at_lines(ledger, cplan.build_dir, wt, layout.work_root, added)
            builds = (
                Finding("builds", False, f"{len(warned)} warning(s) on its lines, e.g. {warned[0]}")
                if warned
                else Finding("builds", True, f"{len(cplan.variant.targets)} target(s)")
            )
        except CommandError as exc:
            first = next((ln for ln in exc.tail.splitlines() if " error: " in ln or "error:" in ln), "")
            builds = Finding("builds", False, f"{first or 'the build failed'} (log: {log_file})")
        findings = (Finding("applies", True, "git am --3way"), builds, *lint.lint(wt, c))
        results.append(PatchResult(i + 1, p.path.name, p.subject, findings))
    git.git("checkout", "--quiet", branch, cwd=wt, check=False)
    return Report(name, vname, base, tuple(results))
