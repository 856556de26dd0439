"""`variant smoke`: does each installed binary run, and does a patched variant decode like its baseline?

Greedy decoding of the tiny model is deterministic for a given binary, so a
kernel patch that does not mean to change numerics must reproduce its
baseline's text exactly. Across compilers (gcc vs clang) floating-point
contraction and vectorisation may legitimately flip a near-tie, so there the
check is a stated tolerance: the generated text must agree on at least
CROSS_TOOLCHAIN_PREFIX of its length before the first difference.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path

from ..layout import Layout
from ..models import models, support
from ..models.installed import Installed, generate_argv, held, llama_bench_rows
from ..models.models import PROMPT
from ..models.own import OwnModel
from ..run import Measured, measure
from ..source import sources as sources_mod
from ..source.sources import Source
from . import forksmoke
from .baseline import default_baseline
from .smokecheck import Check

N_PREDICT = 24
CROSS_TOOLCHAIN_PREFIX = 0.5
Say = Callable[[str], None]


# The last line llama-completion logs. Its output goes through common's asynchronous
# logger, whose worker thread is not joined at exit at this pin (the logger is leaked on
# purpose; llama.cpp #22142): whatever it has not printed when main returns is lost, with
# exit code 0. Measured on a 2-CPU VM (benchmarks/smoke_repeat.py; the issue-28 note):
# 8 of 100 runs lost their tail beside a test run, 65 of 100 with a CPU hog per core.
# A run without this line says nothing about what it computed, so runs are drawn until
# one is complete. At 65% lost per run, 3 draws left a load mode without a complete run
# in 27% of smokes (CI's flake); 20 draws leave it in 0.02%, and cost 0.1 s per lost run.
COMPLETION_END = "common_perf_print:"
ATTEMPTS = 20


def measure_complete(
    argv: list[str], end: str | None, *, timeout: float, env: Mapping[str, str] | None = None
) -> tuple[Measured, bool, int]:
    """Run argv; with `end`, a successful run whose output lacks it is incomplete and drawn again.

    Returns the last run, whether it is complete (False: ATTEMPTS runs all lost their tail),
    and how many runs before it lost their tail.
    """
    for lost in range(ATTEMPTS):
        m = measure(argv, env=env, timeout=timeout)
        if end is None or m.returncode != 0 or end in m.stdout + m.stderr:
            return m, True, lost
    return m, False, ATTEMPTS


def _run(
    inst: Installed, binary: str, args: list[str], *, timeout: float = 120, end: str | None = None
) -> tuple[Check, str]:
    """Run an installed binary; with `end`, a run whose output lacks it is incomplete and rerun."""
    c, stdout, _ = _run_drawn(inst, binary, args, timeout=timeout, end=end)
    return c, stdout


def _run_drawn(
    inst: Installed, binary: str, args: list[str], *, timeout: float = 120, end: str | None = None
) -> tuple[Check, str, str]:
    """_run, and what it says of the runs drawn again (lost_note), for a check that words its own row."""
    path = inst.bin / binary
    if not path.is_file():
        return Check(inst.name, binary, True, "not built (not in targets): skipped"), "", ""
    m, complete, lost = measure_complete([str(path), *args], end, timeout=timeout, env=inst.runtime_env())
    if not complete:
        detail = f"output incomplete in {ATTEMPTS} runs (no {end!r}: the log lost its tail)"
        return Check(inst.name, binary, False, detail, shlex.join(m.argv), m.tail()), "", ""
    cmd = shlex.join(m.argv)
    if m.returncode is None:
        return Check(inst.name, binary, False, f"timed out after {timeout:g} s", cmd, m.tail()), "", ""
    if m.returncode != 0:
        return Check(inst.name, binary, False, f"exit code {m.returncode}", cmd, m.tail()), "", ""
    note = lost_note(lost)
    return Check(inst.name, binary, True, f"ok in {m.wall_s:.2f} s{note}", cmd), m.stdout, note


def lost_note(lost: int) -> str:
    """What a check says of the runs drawn again because their log lost its tail (none: nothing)."""
    if not lost:
        return ""
    runs, were = ("runs", "were") if lost > 1 else ("run", "was")
    return f" ({lost} earlier {runs} lost the log's tail and {were} drawn again)"


def generated(stdout: str) -> str:
    """The text after the prompt's echo."""
    cut = stdout.find(PROMPT.split()[-1])
    return stdout[cut + len(PROMPT.split()[-1]) :] if cut >= 0 else stdout


# What smoke runs, where a variant built it; a variant that built none of them proves nothing.
PROGRAMS = ("llama-simple", "test-barrier", "llama-bench", "test-backend-ops", "test-thread-safety")


def _generate_args(generate: tuple[str, ...], model: Path) -> tuple[str, list[str]]:
    """The program and arguments of a greedy decode: upstream's llama-simple, or the source's own way."""
    if not generate:
        return "llama-simple", ["-m", str(model), "-n", str(N_PREDICT), PROMPT]
    values = {"{model}": str(model), "{prompt}": PROMPT, "{n}": str(N_PREDICT)}
    return generate[0], [values.get(a, a) for a in generate[1:]]


def greedy(
    inst: Installed, model: Path, generate: tuple[str, ...] = (), timeout: float = 120
) -> tuple[Check, str]:
    """The variant's greedy decode of the smoke prompt: its check, and the generated text."""
    program, args = _generate_args(generate, model)
    c, text = _run(inst, program, args, timeout=timeout)
    if c.ok and text and not generated(text).strip():
        c = Check(inst.name, program, False, "generated nothing", c.command, text[-500:])
    return c, generated(text)


def run_binaries(
    inst: Installed, model: Path, generate: tuple[str, ...] = (), timeout: float = 120
) -> tuple[list[Check], str]:
    """Every smoke program the variant built, on model; timeout: per program that loads it."""
    program, _ = _generate_args(generate, model)
    if not any((inst.bin / p).is_file() for p in (program, *PROGRAMS)):
        built = ", ".join(sorted(b["name"] for b in inst.manifest.get("binaries", []))) or "nothing"
        detail = f"none of the smoke programs ({', '.join(PROGRAMS)}) is built; it has {built}"
        return [Check(inst.name, "-", False, detail)], ""
    checks = []
    c, text = greedy(inst, model, generate, timeout)
    checks.append(c)
    checks.append(_run(inst, "test-barrier", ["2", "3"])[0])
    bench_args = ["-m", str(model), "-p", "16", "-n", "4", "-r", "1", "-o", "json"]
    c, out = _run(inst, "llama-bench", bench_args, timeout=timeout)
    if c.ok and out:
        try:
            row = next(r for r in llama_bench_rows(out) if r.get("n_gen", 0) > 0)  # not the prompt case
            c = Check(
                inst.name, "llama-bench", True, f"{c.detail}; tg {row['avg_ts']:.1f} tokens/s", c.command
            )
        except (StopIteration, KeyError):
            c = Check(inst.name, "llama-bench", False, "no JSON result", c.command, out[-500:])
    checks.append(c)
    checks.append(_run(inst, "test-backend-ops", ["perf", "-b", "CPU", "-o", "RMS_NORM"])[0])
    # parallel contexts on one model: the threadpool and its barrier under concurrent graphs
    checks.append(
        _run(
            inst,
            "test-thread-safety",
            ["-m", str(model), "-p", PROMPT, "-n", "32", "-c", "256", "-ub", "32", "-np", "4", "-t", "2"],
            timeout=max(600, timeout),
        )[0]
    )
    return checks, text


def first_difference(a: str, b: str) -> int:
    """The index of the first character where a and b differ (the shorter length when one is a prefix)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def compare_outputs(
    a: Installed, ta: str, b: Installed, tb: str, program: str = "llama-simple", which: str = "--baseline"
) -> Check:
    """b's greedy text against a's; `which` says how a was chosen (--baseline, or the default)."""
    same_compiler = a.manifest["toolchain"] == b.manifest["toolchain"]
    label = f"greedy output vs {a.name} ({which})"
    if ta == tb:
        return Check(b.name, program, True, f"{label}: identical ({len(tb)} chars)")
    prefix = first_difference(ta, tb)
    frac = prefix / max(len(ta), 1)
    diff = f"first difference at char {prefix} of {len(ta)}: {ta[: prefix + 20]!r} vs {tb[: prefix + 20]!r}"
    if same_compiler:
        return Check(b.name, program, False, f"{label}: differs (same source and toolchain); {diff}")
    ok = frac >= CROSS_TOOLCHAIN_PREFIX
    return Check(
        b.name,
        program,
        ok,
        f"{label} (other compiler, tolerance: {CROSS_TOOLCHAIN_PREFIX:.0%} common prefix): "
        f"{frac:.0%}; {diff}",
    )


def load_mode_checks(
    inst: Installed, model: Path, modes: tuple[str, ...], timeout: float = 120
) -> list[Check]:
    """llama-completion's greedy text in each load mode must equal its text with the default load."""
    if not modes:
        return []
    if not (inst.bin / "llama-completion").is_file():
        return [Check(inst.name, "llama-completion", True, "not built (not in targets): load modes skipped")]
    texts: dict[str, str] = {}
    checks = []
    for mode in ("default", *modes):
        # One thread: this check is about the bytes each load mode reads, not the threadpool.
        argv = generate_argv(inst, model, mode, N_PREDICT, threads=1)
        c, out, drawn = _run_drawn(inst, "llama-completion", argv[1:], end=COMPLETION_END, timeout=timeout)
        if not c.ok:
            checks.append(
                Check(
                    inst.name, "llama-completion", False, f"load mode {mode}: {c.detail}", c.command, c.tail
                )
            )
            continue
        texts[mode] = out
        if mode != "default" and "default" in texts:
            same = out == texts["default"]
            verdict = "identical to" if same else "differs from"
            detail = f"load mode {mode}: greedy output {verdict} the default load{drawn}"
            tail = "" if same else out[-500:]
            checks.append(Check(inst.name, "llama-completion", same, detail, c.command, tail))
    return checks


def smoke(
    layout: Layout, names: list[str], baseline: str | None, say: Say, load_modes: tuple[str, ...] = (),
    own: OwnModel | None = None,
) -> list[Check]:  # fmt: skip
    """The checks of every named variant (and its baseline), on the tiny model or the user's own."""
    model = own.path if own else models.ensure(layout.home / "models", models.spec_for("tiny", "f16"), say)
    timeout = support.timeout_for(own, 120.0)  # a big model of the user's takes longer to load
    srcs = sources_mod.load_all(layout.sources_file)
    checks: list[Check] = []
    outputs: dict[str, tuple[Installed, str]] = {}

    def source_of(inst: Installed) -> Source | None:
        return srcs.get(inst.manifest["source"]["name"])

    with contextlib.ExitStack() as stack:

        def ran(name: str) -> tuple[Installed, str]:
            if name not in outputs:
                inst = stack.enter_context(held(layout, name))
                say(f"smoke: {name}" + (f" on {own.label}" if own else ""))
                src = source_of(inst)
                if own and (why := support.why_not(own, inst, support.known_types(layout, inst))):
                    checks.append(Check(name, own.label, True, f"skipped: {why}"))
                    outputs[name] = (inst, "")
                    return outputs[name]
                found, text = run_binaries(inst, model, src.generate if src else (), timeout)
                checks.extend(found)
                # only the named variants: a load mode is often what their patches add,
                # and a baseline without it would only fail on the option
                if name in names:
                    checks.extend(load_mode_checks(inst, model, load_modes, timeout))
                    if src is not None and src.models and not own:
                        checks.extend(forksmoke.checks(layout, src, inst, say))
                outputs[name] = (inst, text)
            return outputs[name]

        for name in names:
            inst, text = ran(name)
            base = baseline or default_baseline(layout, name)
            src = source_of(inst)
            program = _generate_args(src.generate if src else (), model)[0]
            if base and base != name and not baseline and not (layout.dist / base).exists():
                # The user's own command works on its own: the variant is smoked alone, and says so.
                detail = (f"greedy output not compared: its default baseline {base} is not built "
                          f"(`variant build {base}`, or smoke with --build-baseline)")  # fmt: skip
                checks.append(Check(name, program, True, detail))
            elif base and base != name:
                binst, btext = ran(base)
                if text and btext and (inst.bin / program).is_file() and (binst.bin / program).is_file():
                    which = "--baseline" if baseline else "its default baseline"
                    checks.append(compare_outputs(binst, btext, inst, text, program, which))
    return checks
