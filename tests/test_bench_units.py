"""Bench plumbing that needs no llama.cpp: parsers, profiles, page-cache eviction, environment, statistics."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.bench import kernels, loading, pagecache, profiles, stats
from builder.errors import BuildError, SpecError, UserError
from builder.layout import Layout
from builder.models import installed

from .conftest import Catalogue, Outcome

SQL = (
    "INSERT INTO test_backend_ops (test_time, build_commit, backend_name, op_name, op_params, "
    "test_mode, supported, passed, error_message, time_us, flops, bandwidth_gb_s, memory_kb, n_runs, "
    "device_description, backend_reg_name) VALUES ('2026-11-24T15:09:46Z', '12a36b8', 'CPU', 'MUL_MAT', "
    "'type_a=q8_0,type_b=f32,m=4096,n=1,k=14336,bs=[1,1],nr=[1,1],per=[0,1,2,3],k_v=0,o=1', 'perf', "
    "'1', '1', '', '9299.079710', '12629261782.956549', '0.000000', '61000', '138', '', '');"
)


def test_backend_ops_sql_rows_are_parsed() -> None:
    (row,) = kernels.parse_backend_ops_sql("noise\n" + SQL + "\nmore noise\n")
    assert row["op_name"] == "MUL_MAT" and float(row["flops"]) / 1e9 == pytest.approx(12.63, rel=1e-3)
    assert row["op_params"].startswith("type_a=q8_0,type_b=f32,m=4096,n=1")


def test_profiles_wrap_and_validate(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[pinned]\ncpus = "0"\nthreads = [1]\nenv = { OMP_PROC_BIND = "close" }\n'
        '[fifo]\npolicy = "fifo"\npriority = 5\n'
        '[bad]\npolicy = "fast"\n'
        "[worse]\nthreds = [2]\n"
    )
    p = profiles.load(tmp_path, "pinned")
    assert p.wrap(["x", "1"]) == ["taskset", "-c", "0", "x", "1"] and p.env == (("OMP_PROC_BIND", "close"),)
    assert profiles.load(tmp_path, "fifo").wrap(["x"]) == ["chrt", "-f", "5", "x"]
    assert profiles.load(tmp_path, "default").wrap(["x"]) == ["x"]
    with pytest.raises(SpecError, match=r"bad\.policy"):
        profiles.load(tmp_path, "bad")
    with pytest.raises(SpecError, match='did you mean "threads"'):
        profiles.load(tmp_path, "worse")
    with pytest.raises(UserError, match='unknown profile "pined"'):
        profiles.load(tmp_path, "pined")


def test_unpermitted_scheduler_policy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    p = profiles.Profile(name="rt", policy="fifo", priority=99)
    from builder import run

    real = run.capture

    def fake(argv: list[str], **kw: object) -> run.Result:
        if argv[0] == "chrt":
            return run.Result(
                tuple(argv), 1, "", "chrt: failed to set pid 0's policy: Operation not permitted"
            )
        return real(argv)

    monkeypatch.setattr(profiles, "capture", fake)
    with pytest.raises(UserError, match=r"not permitted here.*CAP_SYS_NICE"):
        profiles.check(p)


def test_evict_drops_a_file_from_the_page_cache(tmp_path: Path) -> None:
    f = tmp_path / "blob"
    f.write_bytes(os.urandom(8 << 20))
    f.read_bytes()
    assert pagecache.resident_fraction(f) > 0.9  # just written and read: cached
    pagecache.evict(f)
    assert pagecache.resident_fraction(f) < 0.05
    f.read_bytes()
    assert pagecache.resident_fraction(f) > 0.9


def test_bench_refuses_unbuilt_variants_and_unknown_suites(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    res = run(catalogue.root, "bench", "v", "--suite", "barrier")
    assert res.code == 2 and "v is not built; run `variant build v` first" in res.err, res.out + res.err
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.out + res.err
    res = run(catalogue.root, "bench", "v", "--suite", "barier")
    assert res.code == 2 and 'did you mean "barrier"' in res.err, res.out + res.err
    res = run(catalogue.root, "bench", "v", "--threads", "two")
    assert res.code == 2 and "comma-separated list of integers" in res.err, res.out + res.err


def test_bench_runs_the_suites_every_variant_can_and_names_the_ones_it_skips(
    catalogue: Catalogue, run: Callable[..., Outcome]
) -> None:
    # A fork without test-barrier (ik_llama.cpp) against one with it: the barrier suite is
    # skipped with the reason, the suites both can run still run.
    catalogue.variant("withbarrier", 'targets = ["test-barrier", "llama-bench"]\n')
    catalogue.variant("nobarrier", 'targets = ["llama-bench"]\n')
    res = run(catalogue.root, "build", "withbarrier", "nobarrier")
    assert res.code == 0, res.out + res.err
    res = run(catalogue.root, "bench", "withbarrier", "--reps", "1", "--suite", "barrier", "--threads", "1")
    assert res.code == 0, res.out + res.err
    assert "skipping" not in res.err and "| 1,234 [1,234, 1,234] |" in res.out
    res = run(catalogue.root, "bench", "nobarrier", "--vs", "withbarrier", "--reps", "1",
              "--suite", "barrier", "--suite", "e2e", "--threads", "1", "--type", "q4_0,q8_0")  # fmt: skip
    assert res.code == 0, res.out + res.err
    assert "skipping suite barrier: nobarrier built none of test-barrier" in res.err
    assert "| e2e |" in res.out and "| barrier |" not in res.out
    # --type: the wide model in each weight type, a case each
    assert "| tg_tps (tokens/s, higher is better) | model=q4_0 n_gen=32 n_prompt=0 threads=1 |" in res.out
    assert "| tg_tps (tokens/s, higher is better) | model=q8_0 n_gen=32 n_prompt=0 threads=1 |" in res.out
    res = run(catalogue.root, "bench", "nobarrier", "--suite", "e2e", "--type", "q5_k")
    assert (
        res.code == 2 and '--type: "q5_k": expected weight types among f16, q8_0, q4_0, tq2_0' in res.err
    ), res.out + res.err
    res = run(catalogue.root, "bench", "nobarrier", "--reps", "1", "--suite", "barrier")
    assert res.code == 2 and "no suite can run on nobarrier" in res.err, res.out + res.err


def test_load_ms_from_stamped_log_and_from_the_perf_line() -> None:
    from builder.bench.loading import load_ms

    stamped = (
        "0.00.006.489 I llama_completion: llama backend init\n"
        "0.00.013.331 I llama_completion: load the model and apply lora adapter, if any\n"
        "0.00.020.100 I llama_context: constructing llama_context\n"
        "0.01.200.057 I llama_context: constructing llama_context\n"
        "0.01.335.057 I cmn          init: llama threadpool init, n_threads = 2\n"
        "0.03.265.831 I common_perf_print:        load time =     459.03 ms\n"
    )
    # the fit pass's throwaway context is not the end of the load; the real one is
    assert load_ms(stamped) == pytest.approx(1186.726)
    # an older log without the context line ends at the threadpool
    no_context = "".join(x + "\n" for x in stamped.splitlines() if "constructing" not in x)
    assert load_ms(no_context) == pytest.approx(1321.726)
    assert load_ms("llama_perf_context_print:        load time =     459.03 ms\n") == 459.03
    assert load_ms("nothing here") is None


def test_fio_reference_reads_the_whole_file_past_the_page_cache(tmp_path: Path) -> None:
    """The load suite's `fio` row: a real fio run on a real file (O_DIRECT, io_uring)."""
    data = tmp_path / "model.gguf"
    data.write_bytes(bytes(range(256)) * (16 * 4096))  # 16 MiB
    pagecache.evict(data)
    out = subprocess.run(loading.fio_argv(data), capture_output=True, text=True, check=True)
    ms, mb_s = loading.fio_read(out.stdout)
    assert ms > 0 and mb_s > 0
    job = json.loads(out.stdout[out.stdout.index("{") :])["jobs"][0]
    assert job["read"]["io_bytes"] == data.stat().st_size  # all of it, once
    assert job["job options"]["direct"] == "1"
    assert data.read_bytes()[:4] == bytes(range(4))  # --readonly: untouched
    with pytest.raises(BuildError, match="fio printed no read job"):
        loading.fio_read("fio: failed to open\n")
    # a split model: every part, one read job; a ':' in a name is fio's separator, escaped
    parts = [tmp_path / "a:1-00001-of-00002.gguf", tmp_path / "a:1-00002-of-00002.gguf"]
    for p in parts:
        p.write_bytes(bytes(range(256)) * (8 * 4096))  # 8 MiB each
    out = subprocess.run(loading.fio_argv(*parts), capture_output=True, text=True, check=True)
    job = json.loads(out.stdout[out.stdout.index("{") :])["jobs"][0]
    assert job["read"]["io_bytes"] == 2 * parts[0].stat().st_size


def test_formats_each_build_runs_its_own_kernels_format_and_the_plain_ones(tmp_path: Path) -> None:
    from builder.bench import formats
    from builder.models import forkmodels

    def inst(cmake: dict[str, str]) -> installed.Installed:
        return installed.Installed("v", tmp_path, {"cmake": cmake})

    tmac, bitnet = forkmodels.RECIPES["tmac-i4"], forkmodels.RECIPES["bitnet-ternary"]
    assert formats.runnable(tmac, inst({"GGML_TMAC": "ON"}), own=True) == ("i4", "f16", "q4_0")
    assert formats.runnable(tmac, inst({}), own=False) == ("f16", "q4_0")  # upstream: no i4
    assert formats.runnable(bitnet, inst({"BITNET_X86_TL2": "ON"}), own=True) == ("tl2", "i2_s", "f32", "f16")
    assert formats.runnable(bitnet, inst({"BITNET_X86_TL2": "OFF"}), own=True) == ("i2_s", "f32", "f16")


HELP = """-lm,   --load-mode MODE                 model loading mode (default: auto)
                                        - auto: mmap, unless a device does not support it
                                        - none: no special loading mode
                                        - mmap+mlock: mmap + force system to keep model in RAM rather than
                                        swapping or compressing
                                        - dio: use DirectIO if available
{extra}                                        (env: LLAMA_ARG_LOAD_MODE)
-lzm,  --lazy-mode MODE                 on-demand reading of certain tensors
                                        - lazy: not a load mode
"""


def test_a_load_mode_the_variant_does_not_document_is_skipped_on_it(tmp_path: Path) -> None:
    from builder.bench import case as case_mod

    said: list[str] = []
    ctx = case_mod.Context(Layout.at(tmp_path), profiles.Profile(), (2,), said.append)
    insts = {}
    for name, extra in (
        ("base", ""),
        ("patched", "                                        - uring: io_uring\n"),
    ):
        (tmp_path / name).mkdir()
        tool = tmp_path / name / "llama-completion"
        tool.write_text("#!/bin/sh\ncat <<'EOF'\n" + HELP.format(extra=extra) + "EOF\n")
        tool.chmod(0o755)
        insts[name] = installed.Installed(name, tmp_path / name, {})
    assert loading._listed_modes(str(tmp_path / "patched" / "llama-completion")) == {
        "auto", "none", "mmap+mlock", "dio", "uring"}  # fmt: skip
    told: set[tuple[str, str]] = set()
    assert loading.runs_mode(insts["patched"], "uring", ctx, told)
    assert not loading.runs_mode(insts["base"], "uring", ctx, told)
    assert not loading.runs_mode(insts["base"], "uring", ctx, told)
    assert loading.runs_mode(insts["base"], "dio", ctx, told) and loading.runs_mode(
        insts["base"], "default", ctx, told
    )
    assert said == ["base: its llama-completion has no load mode uring; skipped there"]  # once per variant


def _env_printer(path: Path, seen: Path, output: str = "") -> None:
    """A program that writes the environment it got to seen (one NAME=VALUE a line) and prints output."""
    path.write_text(f"#!/bin/sh\n/usr/bin/env > {seen}\nprintf '%s\\n' '{output}'\n")
    path.chmod(0o755)


def _seen(seen: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)


def test_a_benchmark_process_gets_the_profiles_environment_not_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.bench import case as case_mod

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GGML_SCHED_PRIO", "3")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    (tmp_path / "bin").mkdir()
    _env_printer(tmp_path / "bin" / "prog", tmp_path / "seen")
    inst = installed.Installed("v", tmp_path / "bin", {"runtime": {"env": {"KCFG": "{share}/kcfg.ini"}}})
    profile = profiles.Profile(name="p", env=(("OMP_WAIT_POLICY", "passive"),))
    ctx = case_mod.Context(Layout.at(tmp_path), profile, (1,), lambda _m: None)
    ran = ctx.run(inst, [str(tmp_path / "bin" / "prog")])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = _seen(tmp_path / "seen")
    assert seen["OMP_WAIT_POLICY"] == "passive"  # the profile's
    assert seen["KCFG"] == f"{tmp_path}/share/kcfg.ini"  # what the variant's programs need
    assert seen["LC_ALL"] == "C" and seen["PATH"] == os.environ["PATH"] and seen["HOME"] == os.environ["HOME"]
    assert not {"OMP_NUM_THREADS", "GGML_SCHED_PRIO", "SOMETHING_ELSE"} & set(seen)
    assert set(seen) <= {"PATH", "HOME", "TMPDIR", "LC_ALL", "OMP_WAIT_POLICY", "KCFG", "PWD", "SHLVL", "_"}


def test_bench_records_the_environment_of_its_processes_and_the_report_shows_it(
    catalogue: Catalogue, run: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.out + res.err
    seen = tmp_path / "seen"
    _env_printer(catalogue.dist / "v" / "bin" / "test-barrier", seen, "graph-compute: 1234.5 nsec per-node")
    (catalogue.root / "profiles.toml").write_text('[quiet]\nenv = { OMP_PROC_BIND = "close" }\n')
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # exported in the shell for something else
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    args = ["--suite", "barrier", "--reps", "1", "--threads", "1", "--profile", "quiet"]
    res = run(
        catalogue.root,
        "bench",
        "v",
        *args,
        "--env",
        "OMP_WAIT_POLICY=passive",
        "--env",
        "GOMP_SPINCOUNT=10000",
    )
    assert res.code == 0, res.out + res.err
    # the caller's OMP_NUM_THREADS is named as not passed; GOMP_SPINCOUNT was given with --env
    (told,) = [line for line in res.err.splitlines() if line.startswith("not passed to the benchmarks: ")]
    assert " OMP_NUM_THREADS=1 " in told and "GOMP_SPINCOUNT" not in told and "(give --env NAME=VALUE" in told
    got = _seen(seen)
    assert "OMP_NUM_THREADS" not in got
    assert (got["OMP_PROC_BIND"], got["OMP_WAIT_POLICY"], got["GOMP_SPINCOUNT"]) == (
        "close",
        "passive",
        "10000",
    )
    recorded = {
        "GOMP_SPINCOUNT": "10000",
        "LC_ALL": "C",
        "OMP_PROC_BIND": "close",
        "OMP_WAIT_POLICY": "passive",
    }
    con = sqlite3.connect(catalogue.home / "results.sqlite")
    try:
        (env,) = con.execute("SELECT env FROM runs").fetchone()
    finally:
        con.close()
    assert json.loads(env) == recorded
    out = tmp_path / "report"
    res = run(catalogue.root, "report", "v", "--out", str(out))
    assert res.code == 0, res.out + res.err
    assert (
        "| `GOMP_SPINCOUNT=10000` `LC_ALL=C` `OMP_PROC_BIND=close` `OMP_WAIT_POLICY=passive` |"
        in (out / "report.md").read_text()
    )
    exported = tmp_path / "runs.json"
    res = run(catalogue.root, "results", "export", str(exported))
    assert res.code == 0, res.out + res.err
    assert json.loads(exported.read_text())["runs"][0]["env"] == recorded
    # a variable given badly is refused before anything runs
    for bad in ("OMP_NUM_THREADS", "1X=2", "A B=1"):
        res = run(catalogue.root, "bench", "v", "--suite", "barrier", "--env", bad)
        assert res.code == 2 and f'--env "{bad}": expected NAME=VALUE' in res.err, res.out + res.err


def test_a_benchmark_gets_the_callers_variables_a_build_gets_each_with_its_reason() -> None:
    from builder.bench import environment
    from builder.host import env as host_env

    assert set(environment.PASSED_BECAUSE) == set(host_env.PASSED)


def test_clear_win_lower_is_better() -> None:
    c = stats.compare([100, 102, 98, 101], [50, 52, 49, 51], "ns", "lower")
    assert c.verdict == "faster" and c.speedup.min > 1.9 and c.speedup.median == pytest.approx(2.0, rel=0.03)
    assert c.baseline.median == 100.5 and c.candidate.n == 4


def test_regression_higher_is_better() -> None:
    c = stats.compare([10.0, 10.2, 9.9], [8.0, 8.1, 7.9], "tokens/s", "higher")
    assert c.verdict == "slower" and c.speedup.max < 1.0


def test_spread_crossing_one_is_noise_even_if_medians_differ() -> None:
    c = stats.compare([100, 100, 100, 100, 100], [90, 95, 97, 104, 80], "ns", "lower")
    assert c.speedup.median > 1.0 and c.verdict == "within noise"


def test_ratios_are_taken_pair_by_pair() -> None:
    # A machine that drifts: each pair shares the drift, so the ratio is exactly 2.
    base = [100, 200, 400]
    cand = [50, 100, 200]
    c = stats.compare(base, cand, "ms", "lower")
    assert c.speedup.min == c.speedup.max == 2.0 and c.verdict == "faster"


def test_zero_against_zero_is_no_change() -> None:
    c = stats.compare([0, 0, 0], [0, 0, 0], "faults", "lower")
    assert c.speedup.median == 1.0 and c.verdict == "within noise"
    assert stats.compare([0, 0], [5, 6], "MiB", "higher").speedup.min == float("inf")


def test_non_timing_units_say_better_or_worse() -> None:
    assert stats.compare([1000, 1010], [100, 90], "faults", "lower").verdict == "better"
    assert stats.compare([0, 1e-9], [100, 110], "MiB", "higher").verdict == "better"


def test_profile_numa_and_interleave_keys(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[spread]\nnuma = "distribute"\ninterleave = true\ncpus = "0-1"\npolicy = "fifo"\npriority = 5\n'
        '[bound]\nnuma = "numactl"\ncpus = "0"\n'
        '[badnuma]\nnuma = "distrbute"\n'
        '[badinterleave]\ninterleave = "yes"\n'
    )
    spread = profiles.load(tmp_path, "spread")
    assert (spread.numa, spread.interleave) == ("distribute", True)
    wrapped = ["taskset", "-c", "0-1", "chrt", "-f", "5", "numactl", "--interleave=all", "x"]
    assert spread.wrap(["x"]) == wrapped
    assert spread.numa_args() == ["--numa", "distribute"]
    # numactl as llama.cpp's mode wraps nothing: the profile's cpus do the binding.
    bound = profiles.load(tmp_path, "bound")
    assert bound.wrap(["x"]) == ["taskset", "-c", "0", "x"] and bound.numa_args() == ["--numa", "numactl"]
    assert profiles.Profile().numa_args() == [] and not profiles.Profile().interleave
    with pytest.raises(SpecError, match=r'profiles\.toml: badnuma\.numa: invalid value "distrbute"'):
        profiles.load(tmp_path, "badnuma")
    with pytest.raises(SpecError, match=r"profiles\.toml: badinterleave\.interleave: expected true or false"):
        profiles.load(tmp_path, "badinterleave")


def test_interleave_under_a_profiler_keeps_numactl_outside_it() -> None:
    p = profiles.Profile(interleave=True, profiler=("perf", "record", "--"))
    assert p.wrap(["x"]) == ["numactl", "--interleave=all", "perf", "record", "--", "x"]


def test_interleave_without_numactl_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(UserError, match=r"profile il: .*numactl.*apt-get install -y numactl"):
        profiles.check(profiles.Profile(name="il", interleave=True))
    profiles.check(profiles.Profile(name="plain", numa="isolate"))  # --numa needs no numactl
    from builder import run

    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    failed = run.Result(("numactl",), 1, "", "set_mempolicy: Operation not permitted")
    monkeypatch.setattr(profiles, "capture", lambda argv, **kw: failed)
    with pytest.raises(UserError, match=r"profile il: numactl --interleave=all is not permitted.*mempolicy"):
        profiles.check(profiles.Profile(name="il", interleave=True))


def test_numa_note_only_on_a_one_node_machine() -> None:
    both = profiles.Profile(name="x", numa="distribute", interleave=True)
    assert profiles.numa_note(both, 1) == (
        "profile x: numa=distribute and interleave have no effect on this machine: it has one NUMA node"
    )
    assert profiles.numa_note(profiles.Profile(name="y", interleave=True), 1) == (
        "profile y: interleave has no effect on this machine: it has one NUMA node"
    )
    assert profiles.numa_note(both, 2) is None
    assert profiles.numa_note(profiles.Profile(), 1) is None
