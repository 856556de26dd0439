"""`variant ci generate`: GitHub Actions workflows from Jinja2 templates (package data).

variants.yml: a plan job that runs `variant matrix --json` (and fails when the matrix embedded
at generation time is stale), one build job per matrix entry (setup, the group's compile cache
restored, `variant build`, the cache saved from the default branch only, `variant smoke`, a
short `variant bench`, the results exported and uploaded), and a report job that imports every
job's results into one database and writes the comparison tables to the job summary.
tests.yml: this project's own checks (make setup, make lint, make test).

The templates use [[ ]] and [% %] so that GitHub's own ${{ }} expressions pass through untouched.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import jinja2

from ..layout import Layout
from . import matrix
from .runners import DEFAULT_IMAGE, Config

BRANCHES = ("main", "master")


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("builder.ci", "templates"),
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def matrix_json(layout: Layout, config: Config, filters: tuple[str, ...] = ()) -> str:
    """`variant matrix --json`: one line, as GitHub's output files and fromJSON want it."""
    return json.dumps(matrix.github(matrix.jobs(layout, config, filters)), separators=(",", ":"))


def variants_workflow(layout: Layout, config: Config) -> str:
    jobs = matrix.jobs(layout, config)
    bench = [a for s in config.bench_suites for a in ("--suite", s)] + ["--reps", str(config.bench_reps)]
    return (
        _env()
        .get_template("variants.yml.j2")
        .render(
            branches=json.dumps(list(BRANCHES)),
            matrix_json=matrix_json(layout, config),
            setup=config.setup,
            bench_args=shlex.join(bench),
            # A cold llama.cpp build of every variant in the biggest job, plus smoke and bench.
            timeout_minutes=30 + 20 * max(len(j.build) for j in jobs),
        )
    )


def tests_workflow(config: Config) -> str:
    image = config.runners[0].image if config.runners else DEFAULT_IMAGE
    return _env().get_template("tests.yml.j2").render(branches=json.dumps(list(BRANCHES)), image=image)


def write(path: Path, text: str) -> bool:
    """Write text to path (atomically); False when it already held exactly that."""
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
