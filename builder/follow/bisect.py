"""`variant bisect`: the first upstream version at which a variant went bad.

The versions from good to bad are the source's history entries (offline) or
the first-parent commits of good..bad (git). Each step builds the variant at
the untested version nearest the middle of the range still open (its series
applied, as NAME@VERSION, through the shared cache) and judges it (probe.py).
A version whose series does not apply or whose build fails is skipped, as
`git bisect skip` does, and the step takes its nearest untested neighbour.
Like git bisect, the ends are taken as the user says; the good end is built
for a metric or a greedy text to compare against, the bad end never.

Every step is written to .variant/bisect/<variant>.json as it ends: the same
command run again (after Ctrl-C, a crash, a reboot) resumes where it stopped,
and once done prints the answer without building anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build import pipeline
from ..errors import BuildError, CommandError, PatchError, UserError
from ..layout import Layout
from ..lock import hold
from ..plan import plan as plan_mod
from ..plan.plan import Plan
from ..source import mirror, versions
from ..source import sources as sources_mod
from ..source.history import History
from ..source.versions import Version
from .probe import Say, Step, Test, judge

VERDICTS = ("good", "bad", "skip")
BUILD_TOOLS = ("cmake", "ninja")  # a failure of these is the version's (or a prebuild step's, in python)


@dataclass(frozen=True)
class Outcome:
    variant: str
    test: Test
    line: tuple[Version, ...]  # good first, bad last
    steps: tuple[Step, ...]  # in the order they ran
    first_bad: str | None  # None while skips leave several candidates
    candidates: tuple[str, ...]  # the versions the first bad one is among
    builds: int  # builds this bisect asked for (the good end's included)

    def as_dict(self) -> dict[str, Any]:
        shown = {v.label: {"date": v.date, "title": v.title} for v in self.line}
        return {
            "variant": self.variant,
            "test": self.test.as_dict(),
            "good": self.line[0].label,
            "bad": self.line[-1].label,
            "versions": len(self.line),
            "first_bad": self.first_bad,
            "candidates": list(self.candidates),
            "builds": self.builds,
            "steps": [{**s.as_dict(), **shown.get(s.label, {})} for s in self.steps],
        }


def next_index(n: int, verdicts: dict[int, str]) -> int | None:
    """The version to test next: untested, strictly inside the open range, nearest its middle."""
    lo, hi = bounds(n, verdicts)
    untested = [i for i in range(lo + 1, hi) if i not in verdicts]
    if not untested:
        return None
    middle = (lo + hi) / 2
    return min(untested, key=lambda i: (abs(i - middle), i))


def bounds(n: int, verdicts: dict[int, str]) -> tuple[int, int]:
    """The newest good version and the oldest bad one after it (the ends are good and bad)."""
    lo = max([0, *(i for i, v in verdicts.items() if v == "good")])
    hi = min([n - 1, *(i for i, v in verdicts.items() if v == "bad" and i > lo)])
    return lo, hi


def state_path(layout: Layout, variant: str) -> Path:
    return layout.home / "bisect" / f"{variant}.json"


def run(
    layout: Layout, variant: str, good_ref: str, bad_ref: str, test: Test, *, offline: bool, reset: bool,
    say: Say,
) -> Outcome:  # fmt: skip
    plan, hist = across(layout, variant, "bisect the variant itself (its versions are --good and --bad)",
                        offline=offline, say=say)  # fmt: skip
    src = plan.source
    good = versions.resolve(layout, src, good_ref, hist, fetch=not offline, say=say)
    bad = versions.resolve(layout, src, bad_ref, hist, fetch=not offline, say=say)
    line = tuple(versions.line(layout, src, good, bad, hist))
    labels = [v.label for v in line]
    # the plan's hash: a changed spec, toolchain or series is another bisect, whatever the range
    key = {"variant": variant, "hash": plan.hash, "line": labels, "test": test.as_dict()}
    path = state_path(layout, variant)
    with hold(layout.lock(f"bisect-{variant}"), f"the bisect of {variant}", say=say):
        return _bisect(layout, variant, test, line, key, path, offline=offline, reset=reset, say=say)


def across(
    layout: Layout, variant: str, hint: str, *, offline: bool, say: Say
) -> tuple[Plan, History | None]:
    """The variant (not NAME@VERSION: hint says why) and its source's history; without one, the
    source's git mirror holds the pinned commit and its ancestors, to name versions in."""
    if "@" in variant:
        raise UserError(f'"{variant}": {hint}')
    plan = plan_mod.make(layout, variant)
    hist = versions.histories(layout, sources_mod.load_all(layout.sources_file)).get(plan.source.name)
    if hist is None:
        mirror.ensure_base(layout, plan.source, offline=offline, say=say)
    return plan, hist


def _bisect(
    layout: Layout, variant: str, test: Test, line: tuple[Version, ...], key: dict[str, Any], path: Path,
    *, offline: bool, reset: bool, say: Say,
) -> Outcome:  # fmt: skip
    labels = [v.label for v in line]
    steps = [] if reset else _resume(path, key)
    if steps:
        say(f"bisect: resuming {variant} from {path} ({len(steps)} version(s) judged)")
    verdicts = {labels.index(s.label): s.verdict for s in steps}
    builds = 0
    good_name = f"{variant}@{labels[0]}"
    if test.kind != "run" and next_index(len(line), verdicts) is not None:
        why, builds = build_version(layout, good_name, offline, say)
        if why:
            raise UserError(f"the good end {good_name} cannot be built, so nothing can be judged: {why}")
    while (i := next_index(len(line), verdicts)) is not None:
        lo, hi = bounds(len(line), verdicts)
        left = sum(1 for k in range(lo + 1, hi) if k not in verdicts)
        say(f"bisect: {left} version(s) left between {labels[lo]} and {labels[hi]}; testing {labels[i]}")
        name = f"{variant}@{labels[i]}"
        failed, built = build_version(layout, name, offline, say)
        builds += built
        step = Step(labels[i], "skip", failed) if failed else judge(layout, good_name, name, test, say)
        say(f"bisect: {labels[i]} is {step.verdict}: {step.why}")
        steps.append(step)
        verdicts[i] = step.verdict
        _save(path, key, steps, done=False)
    _save(path, key, steps, done=True)
    lo, hi = bounds(len(line), verdicts)
    skipped = tuple(labels[k] for k in range(lo + 1, hi) if verdicts.get(k) == "skip")
    first = labels[hi] if not skipped else None
    return Outcome(variant, test, line, tuple(steps), first, (*skipped, labels[hi]), builds)


def build_version(layout: Layout, name: str, offline: bool, say: Say) -> tuple[str, int]:
    """("", 1 if it was built) when name is installed; (why, n) when this version cannot be built.

    Only what this version's code decides is a skip (kept in the state): a series that does not
    apply, a target it lacks, CMake, Ninja or the build's own steps failing, the artifacts not
    matching the spec. Anything else (a download, git, the disk) stops the bisect, to be run again.
    """
    try:
        out = pipeline.build(layout, name, pipeline.Options(offline=offline), say)
    except PatchError as exc:
        return f"a series does not apply: {first_line(exc)}", 0
    except (BuildError, pipeline.TargetMissing) as exc:
        return f"the build failed: {first_line(exc)}", 1
    except CommandError as exc:
        if Path(exc.argv[0]).name not in BUILD_TOOLS and not Path(exc.argv[0]).name.startswith("python"):
            raise
        return f"the build failed: {first_line(exc)}", 1
    return "", int(out.action == "built")


def first_line(exc: Exception, limit: int = 200) -> str:
    """An error's first non-blank line, for a table cell (its name when the message is empty)."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:limit] if lines else type(exc).__name__


def _resume(path: Path, key: dict[str, Any]) -> list[Step]:
    """The steps of an earlier run with the same key; [] when there is none or it was finished.

    An unfinished bisect of something else is not dropped silently: it is an error until the
    same command finishes it, or --reset forgets it.
    """
    if not path.is_file():
        return []
    again = "delete it or give --reset"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a bisect state ({exc}); {again}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("key"), dict):
        raise UserError(f"{path}: not a bisect state (no key); {again}")
    if data["key"] != key:
        if data.get("done") is False:
            what = f"an unfinished bisect of {data['key'].get('variant')} with another range, test or build"
            raise UserError(f"{path}: {what} is kept there; run that command again to finish it, or {again}")
        return []
    raw = data.get("steps")
    line, steps, seen = key["line"], [], set()
    for i, s in enumerate(raw if isinstance(raw, list) else [None]):
        ok = isinstance(s, dict) and s.get("verdict") in VERDICTS and s.get("version") in line[1:-1]
        if not ok or not isinstance(s.get("why"), str) or not isinstance(s.get("figures"), dict) \
                or s["version"] in seen:  # fmt: skip
            raise UserError(f"{path}: steps[{i}]: expected a version inside the range (once), a verdict, "
                            f"why and figures; {again}")  # fmt: skip
        seen.add(s["version"])
        steps.append(Step(s["version"], s["verdict"], s["why"], s["figures"]))
    goods = [line.index(s.label) for s in steps if s.verdict == "good"]
    bads = [line.index(s.label) for s in steps if s.verdict == "bad"]
    if goods and bads and max(goods) > min(bads):
        raise UserError(f"{path}: a version judged good ({line[max(goods)]}) is newer than one judged bad "
                        f"({line[min(bads)]}); {again}")  # fmt: skip
    return steps


def _save(path: Path, key: dict[str, Any], steps: list[Step], done: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "done": done, "steps": [s.as_dict() for s in steps]}, indent=1))
    os.replace(tmp, path)


def table(out: Outcome) -> str:
    """The evidence, one row per version in order, the first bad one marked."""
    judged = {s.label: s for s in out.steps}
    rows = ["| version | date | what | verdict | evidence |", "|---|---|---|---|---|"]
    for k, v in enumerate(out.line):
        s = judged.get(v.label)
        if k == 0:
            verdict, why = "good", "given (--good)"
        elif k == len(out.line) - 1 and s is None:
            verdict, why = "bad", "given (--bad)"
        elif s is None:
            continue
        else:
            verdict, why = s.verdict, s.why
        mark = " **first bad**" if v.label == out.first_bad else ""
        cells = (v.label, v.date, v.title, f"{verdict}{mark}", why)
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows)
