"""`variant upstream list`, `bisect`, `history` and `pin`: a variant across upstream versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import UserError, VariantError
from ..follow import bisect as bisect_mod
from ..follow import pin as pin_mod
from ..follow import probe, trend, trendplot
from ..layout import Layout
from ..results import compare
from ..results import questions as questions_mod
from ..results.questions import Question
from ..run import live
from ..source import sources as sources_mod
from ..source import versions
from ..store import results
from ..tomlfile import suggest
from . import app


@app.cli.group()
def upstream() -> None:
    """The upstream versions a source can be built at (NAME@VERSION)."""


@upstream.command("list")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def upstream_list(ctx: click.Context, source: str, as_json: bool) -> None:
    """Known versions of SOURCE, oldest first: its history.toml entries (offline), else its mirror's
    tags; with their dates, which are imported and which is pinned."""
    layout = app.layout(ctx)
    srcs = sources_mod.load_all(layout.sources_file)
    if source not in srcs:
        raise UserError(f'unknown source "{source}"' + suggest(source, srcs) + f" (in {layout.sources_file})")
    src = srcs[source]
    hist = versions.histories(layout, srcs).get(source)
    rows = versions.known(layout, src, hist)
    if as_json:
        app.emit_json([r.as_dict() for r in rows])
        return
    what = f"{len(rows)} versions from {layout.history_file.name}" if hist else "tags of its git mirror"
    click.echo(f"{source}: {what}\n")
    click.echo("| version | date | upstream commit | imported | pinned |\n|---|---|---|---|---|")
    for r in rows:
        imported = r.imported[:12] if r.imported else "-"
        pinned = "pinned" if r.pinned else ""
        click.echo(f"| {r.label} | {r.date} | {r.commit[:12]} | {imported} | {pinned} |")


@app.cli.command()
@click.argument("variant")
@click.option("--good", required=True, help="A version where the variant is good (older).")
@click.option("--bad", required=True, help="A version where it is bad (newer).")
@click.option("--metric", help="SUITE:METRIC measured against the good build, e.g. e2e:tg_tps.")
@click.option("--case", help="Words the metric's case must contain, e.g. 'model=q8_0' (with --metric).")
@click.option("--threads", type=click.IntRange(min=1), help="Thread count to measure at (with --metric).")
@click.option(
    "--threshold", type=float, default=5.0, show_default=True,
    help="Percent below the good build's figure that makes a version bad (with --metric).",
)  # fmt: skip
@click.option("--smoke", "smoke_", is_flag=True, help="Bad when the greedy text differs from good's.")
@click.option("--run", "run_", metavar="'ARGV'", help="A command run with the version's programs first "
              "on PATH: exit 0 good, 125 skip, else bad (as git bisect run).")  # fmt: skip
@click.option("--offline", is_flag=True, help="Do not contact git remotes.")
@click.option("--reset", is_flag=True, help="Forget an earlier, unfinished bisect of this variant.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome and every step as JSON.")
@click.pass_context
def bisect(
    ctx: click.Context, variant: str, good: str, bad: str, metric: str | None, case: str | None,
    threads: int | None, threshold: float, smoke_: bool, run_: str | None, offline: bool, reset: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Find the first upstream version where VARIANT went bad: builds midpoints (its series applied),
    judges each, skips what does not build; resumes when run again."""
    layout = app.layout(ctx)
    test = probe.parse(metric, case, threads, threshold, smoke_, run_)
    out = bisect_mod.run(layout, variant, good, bad, test, offline=offline, reset=reset, say=app.say)
    if as_json:
        app.emit_json(out.as_dict())
        return
    click.echo(f"{variant}: {test.describe()}; {len(out.line)} versions, {out.builds} build(s)\n")
    click.echo(bisect_mod.table(out))
    if out.first_bad:
        first = next(v for v in out.line if v.label == out.first_bad)
        click.echo(f"\nfirst bad version: {first.label} ({first.title}, {first.date})")
    else:
        among = ", ".join(out.candidates)
        click.echo(f"\nthe first bad version is one of {among} (the others were skipped)")


@app.cli.command("history")
@click.argument("variant")
@click.option("--metric", required=True, help="SUITE:METRIC, e.g. e2e:tg_tps.")
@click.option("--case", help="Words the metric's case must contain, e.g. 'n_prompt=0'.")
@click.option("--threads", type=click.IntRange(min=1), help="Thread count to measure at.")
@click.option("--from", "start", metavar="REF", help="The oldest version (default: the history's first).")
@click.option("--to", "end", metavar="REF", help="The newest version (default: the pinned one).")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Every N-th version (the last always).")  # fmt: skip
@click.option(
    "--threshold", type=float, default=5.0, show_default=True,
    help="Percent change between neighbours, beyond their spread, that marks a step.",
)  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False), help="Folder for history.md/.json/.png "
              "(default: .variant/history/VARIANT/SUITE-METRIC).")  # fmt: skip
@click.option("--offline", is_flag=True, help="Do not contact git remotes.")
@click.option("--json", "as_json", is_flag=True, help="Print the points as JSON.")
@click.pass_context
def history_cmd(
    ctx: click.Context, variant: str, metric: str, case: str | None, threads: int | None, start: str | None,
    end: str | None, every: int, threshold: float, out: str | None, offline: bool, as_json: bool,
) -> None:  # fmt: skip
    """A metric of VARIANT at each upstream version: each version built (series applied) and measured
    against the pinned build in one run; stored runs of the same builds are reused. Writes a table,
    JSON and a PNG plot with steps beyond noise marked."""
    layout = app.layout(ctx)
    test = probe.parse(metric, case, threads, threshold, False, None)
    points, ref = trend.run(layout, variant, test, start=start, end=end, every=every, offline=offline,
                            say=app.say)  # fmt: skip
    folder = Path(out) if out else layout.home / "history" / variant / f"{test.suite}-{test.metric}"
    paths = trendplot.write(folder, points, test, ref)
    if as_json:
        app.emit_json(json.loads(paths["json"].read_text()))
    else:
        click.echo(trend.table(points, test, ref))
        steps = [p for p in points if p.step]
        click.echo("\n" + ("steps beyond noise: " + ", ".join(f"{p.version.label} ({p.step})" for p in steps)
                          if steps else "no step beyond noise"))  # fmt: skip
    app.say(f"wrote {paths['md']}, {paths['json'].name} and {paths['png'].name}")


@app.cli.command()
@click.argument("source")
@click.argument("ref")
@click.option("--dry-run", is_flag=True, help="Show the new entry and what would be rebased and rebuilt.")
@click.option("--offline", is_flag=True, help="Do not contact git remotes.")
@click.option("--no-questions", is_flag=True, help="Do not re-run the questions that measure the variants.")
@click.option(
    "--all", "every", is_flag=True, help="Build every variant of the source, not only the built ones."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def pin(
    ctx: click.Context, source: str, ref: str, dry_run: bool, offline: bool, no_questions: bool, every: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Move SOURCE's pin to REF: rebase every series with a port for it, rewrite its sources.toml entry,
    rebuild and smoke its built variants, re-run their questions, and write a bump report."""
    layout = app.layout(ctx)
    bump = pin_mod.prepare(layout, source, ref, offline=offline, say=app.say)
    if dry_run:
        click.echo(pin_mod.diff(layout, bump))
        click.echo(f"series to rebase onto {bump.new.label}: {', '.join(bump.series) or 'none'}")
        built = [v for v, _ in bump.variants if every or (layout.dist / v).exists()]
        click.echo(f"variants to rebuild: {', '.join(built) or 'none'}")
        return
    qpath = layout.root / "questions.toml"
    questions = [] if no_questions or not qpath.is_file() else list(questions_mod.load(qpath).values())
    out = pin_mod.run(layout, bump, offline=offline, every=every, say=app.say)
    asked = _questions(layout, out, questions)
    text = pin_mod.report(bump, out, asked)
    folder = layout.home / "bumps"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(
        c if c.isalnum() or c in "._-" else "_" for c in f"{source}-{bump.old}-to-{bump.new.label}"
    )
    path = folder / f"{safe}.md"
    path.write_text(text)
    if as_json:
        app.emit_json({"source": source, "old": bump.old, "new": bump.new.label, "series": out.series,
                       "variants": out.variants, "rebuild_seconds": out.rebuild_seconds, "questions": asked,
                       "report": str(path)})  # fmt: skip
    else:
        click.echo(text)
    app.say(f"bump report: {path}")


def _questions(layout: Layout, out: pin_mod.Outcome, questions: list[Question]) -> list[dict[str, Any]]:
    """Each question whose variants all rebuilt and smoked, re-run with its own `variant bench`
    arguments; its variants' figures in the newest run before against the run it makes. A bench
    that fails is said in the report, and the next question runs."""
    ok = {v for v, r in out.variants.items() if r.get("smoke") == "ok"}
    asked = []
    for q in questions:
        names = compare.variants_of(list(q.entries))
        if not set(names) <= ok:
            continue
        db = layout.home / "results.sqlite"
        with results.connect(db) as con:
            old = results.latest_run_with(con, names, q.suite)
        app.say(f"question {q.name}: {q.command}")
        argv = [sys.executable, "-m", "builder.cli", "--root", str(layout.root), "bench", *q.bench]
        try:
            live(argv, log_file=layout.home / "bumps" / "questions.log", on_line=app.say)
        except VariantError as exc:
            failed = f"`{q.command}` failed: {str(exc).splitlines()[0][:200]}"
            asked.append(
                {"name": q.name, "text": q.question, "old_run": old, "new_run": None, "rows": [failed]}
            )
            continue
        with results.connect(db) as con:
            new = results.latest_run_with(con, names, q.suite)
            rows = ["| variant | metric | case | old pin | new pin | new/old | verdict |", "|---" * 7 + "|"]
            for v in names if old is not None and new is not None else []:
                for r in compare.pair_rows(con, f"{v}@{old}", f"{v}@{new}", q.suite)[1]:
                    if r.comparison is None:
                        continue
                    a, b = r.cells()
                    rows.append(f"| {v} | {r.metric} | {compare.cell(r.case)} | {a} | {b} | "
                                f"{r.comparison.speedup.median:.3f}x | {r.verdict} |")  # fmt: skip
        asked.append({"name": q.name, "text": q.question, "old_run": old, "new_run": new, "rows": rows})
    return asked
