"""Memory-limited runs: the cgroup (builder/host/cgroup.py), the profile key and --memory-max, the memory
guard under a limit, and `variant bench` under a limit end to end on a fake variant whose programs are
shell scripts (a real cgroup: these tests run as root, as CI does)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.bench import case, loading, pagecache, profiles
from builder.errors import SpecError, UserError
from builder.host import cgroup, topology
from builder.layout import Layout
from builder.results.hardware import hardware_lines
from builder.store import results

from .test_own_bench import _published
from .test_own_models import write_gguf

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "size"),
    [("2G", 2 << 30), ("512M", 512 * MIB), ("1.5GiB", 3 << 29), ("2g", 2 << 30), ("1048576", MIB)],
)
def test_sizes_take_binary_units(text: str, size: int) -> None:
    assert cgroup.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "two gigs", "2X", "-1G", "1000"])
def test_a_size_that_is_not_one_or_below_a_mib_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|below 1 MiB"):
        cgroup.parse_size(text)


def _fake_root(tmp_path: Path, layout: str) -> Path:
    root = tmp_path / "cgroup"
    if layout == "v2":
        root.mkdir(parents=True)
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    elif layout == "v1":
        (root / "memory").mkdir(parents=True)
        (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
        (root / "unified").mkdir()
        (root / "unified" / "cgroup.controllers").write_text("")  # hybrid: v2 holds no controller
    elif layout == "hybrid-v2":
        (root / "unified").mkdir(parents=True)
        (root / "unified" / "cgroup.controllers").write_text("memory\n")
    else:
        (root / "cpu").mkdir(parents=True)
    return root


def test_the_controller_is_v2_where_it_has_memory_else_v1_else_none(tmp_path: Path) -> None:
    for layout, expected in (("v2", (2, "")), ("v1", (1, "memory")), ("hybrid-v2", (2, "unified"))):
        root = _fake_root(tmp_path / layout, layout)
        found = cgroup.controller(root)
        assert found is not None and (found.version, str(found.base.relative_to(root))) == (
            expected[0],
            expected[1] or ".",
        )
    assert cgroup.controller(_fake_root(tmp_path / "none", "none")) is None


def test_no_controller_or_no_root_is_a_reason_not_to_run(tmp_path: Path) -> None:
    none = _fake_root(tmp_path / "none", "none")
    assert "mounts no memory cgroup controller" in str(cgroup.refusal(none, euid=0))
    v1 = _fake_root(tmp_path / "v1", "v1")
    assert "it needs root" in str(cgroup.refusal(v1, euid=1000))
    assert cgroup.refusal(v1, euid=0) is None
    with (
        pytest.raises(UserError, match="memory-max = 2 GiB: this machine mounts no memory cgroup"),
        cgroup.limited(2 << 30, none),
    ):
        pass


def test_a_real_cgroup_kills_what_outgrows_it_and_lets_file_pages_stream(tmp_path: Path) -> None:
    """The two behaviours the big-model case rests on: anonymous memory past the limit is killed (and
    counted), while a file larger than the limit is read through it (its pages reclaimed as it goes)."""
    big = tmp_path / "model.bin"
    big.write_bytes(b"\1" * (192 * MIB))
    pagecache.evict(big)  # its pages were charged to this process's cgroup as it wrote them
    read_all = (
        f"import mmap; f = open({str(big)!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
    )
    read_all += "print(sum(m[i] for i in range(0, len(m), 4096)))"  # every page, 3 times the limit
    with cgroup.limited(64 * MIB) as group:
        assert group.path.is_dir() and group.version in (1, 2)
        done = subprocess.run(
            [*group.prefix(), sys.executable, "-c", read_all], capture_output=True, text=True
        )
        assert done.returncode == 0 and int(done.stdout) == 192 * MIB // 4096, done.stderr
        peak = group.peak()
        assert peak is not None and 32 * MIB < peak <= 64 * MIB  # the reader's pages: charged, held
        assert group.oom_kills() == 0
        grow = subprocess.run(
            [*group.prefix(), sys.executable, "-c", "x = bytearray(256 << 20)"], check=False
        )
        assert grow.returncode == -9 and group.oom_kills() == 1
        inside = subprocess.run([*group.prefix(), "cat", "/proc/self/cgroup"], capture_output=True, text=True)
        assert group.path.name in inside.stdout
    assert not group.path.exists()  # removed after the block


def test_the_profile_key_takes_a_size_and_refuses_anything_else(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text('[small]\nmemory-max = "2G"\n[bad]\nmemory-max = "lots"\n')
    assert profiles.load(tmp_path, "small").memory_max == 2 << 30
    with pytest.raises(SpecError, match=r"bad\.memory-max.*not a size"):
        profiles.load(tmp_path, "bad")


def test_the_cgroup_is_entered_before_anything_else_runs() -> None:
    group = cgroup.Cgroup(Path("/sys/fs/cgroup/memory/x"), 1, 2 << 30)
    prof = profiles.Profile(cpus="0", cgroup=group)
    argv = prof.wrap(["llama-completion", "-m", "m; rm -rf /"])
    assert argv[:4] == ["sh", "-c", cgroup.ENTER, "/sys/fs/cgroup/memory/x/cgroup.procs"]
    assert argv[4:] == ["taskset", "-c", "0", "llama-completion", "-m", "m; rm -rf /"]  # arguments, not text


def test_under_a_limit_a_resident_mode_must_fit_the_limit_and_allow_swap_does_not_help(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(topology, "mem_available", lambda root=Path("/"): 20 << 30)
    models = [("big", 6 << 30)]
    loading.check_memory(("none",), models)  # fits the machine
    with pytest.raises(UserError, match=r"big is 6\.00 GiB, the profile's memory-max is 2 GiB") as e:
        loading.check_memory(("none",), models, 2 << 30)
    assert "--allow-swap" not in str(e.value)
    loading.check_memory(("default", "mmap"), models, 2 << 30)  # mmap streams: what the limit is for
    target = case.Target(Path("/m/big.gguf"), {"model": "big"}, 6 << 30)
    limited = profiles.Profile(memory_max=2 << 30)
    ctx = case.Context(
        Layout.at(tmp_path), limited, (2,), lambda _m: None, load_modes=("none",), allow_swap=True
    )
    with pytest.raises(UserError, match="memory-max is 2 GiB"):
        loading.check_fits(ctx, [target])  # --allow-swap: the cgroup has no swap to go to
    loading.check_fits(
        dataclasses.replace(ctx, profile=profiles.Profile()), [target]
    )  # without a limit: allowed


def test_generation_speed_is_read_from_either_programs_perf_line() -> None:
    completion = (
        "0.21.340 I common_perf_print: prompt eval time =  4448.08 ms / 9 tokens (494.23 ms per token, "
        "2.02 tokens per second)\n0.21.341 I common_perf_print:        eval time = 11649.48 ms / 3 runs "
        "(3883.16 ms per token,     0.26 tokens per second)\n"
    )
    assert loading.tg_rate(completion) == 0.26
    assert loading.tg_rate("main: decoded 16 tokens in 2.00 s, speed: 8.00 t/s\n") == 8.0
    assert loading.tg_rate("nothing here") is None


def test_the_hardware_table_says_the_limit_and_each_models_ratio() -> None:
    limit = {"bytes": 2 << 30, "cgroup": "v1", "model_to_limit": {"wide": 2.87, "bad": "x"}}
    lines = hardware_lines({"memory_limit": limit})
    assert lines == ["memory limit  2.0 GiB (cgroup v1); wide 2.9x the limit"]
    assert hardware_lines({"memory_limit": {"bytes": "lots"}}) == []  # a corrupt record shows nothing


# --- variant bench under a limit, on a fake variant ----------------------------------------------

COMPLETION = """#!/bin/sh
cat /proc/self/cgroup > "{seen}"
{body}
echo "common_perf_print:   eval time = 100.00 ms / 15 runs (6.67 ms per token, 150.00 tokens per second)" >&2
"""


def _cgroup_of(err: str) -> Path:
    """The cgroup a run said it made ("... runs in cgroup v1 variant-PID-TAG")."""
    m = re.search(r"runs in cgroup v(\d) (variant-\d+-[0-9a-f]+)", err)
    assert m, err
    found = cgroup.controller()
    assert found is not None
    return found.base / m[2]


def _catalogue(tmp_path: Path, body: str = "") -> tuple[Path, Path, Path]:
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    _published(root)
    seen = tmp_path / "seen"
    program = next((root / "dist" / ".builds").iterdir()) / "bin" / "llama-completion"
    program.write_text(COMPLETION.format(seen=seen, body=body))
    model = tmp_path / "mödels" / "m.gguf"
    model.parent.mkdir()
    write_gguf(model)
    return root, model, seen


def test_bench_under_a_limit_runs_each_program_in_the_cgroup_and_records_the_limit(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    root, model, seen = _catalogue(tmp_path)
    out = run(root, "bench", "v", "--model", f"m={model}", "--suite", "faults", "--memory-max", "64M",
              "--reps", "1")  # fmt: skip
    assert out.code == 0, out.err
    assert "memory-max 64 MiB: every benchmark process runs in cgroup v" in out.err
    assert "/variant-" in seen.read_text()  # the program itself was in the run's cgroup
    with results.connect(root / ".variant" / "results.sqlite") as con:
        (hw,) = [results.run_hardware(r) for r in con.execute("SELECT * FROM runs")]
        rows = {r["metric"]: r["value"] for r in con.execute("SELECT metric, value FROM measurements")}
    assert hw is not None and hw["memory_limit"]["bytes"] == 64 * MIB
    assert hw["memory_limit"]["model_to_limit"] == {"m": round(model.stat().st_size / (64 * MIB), 2)}
    assert rows["tg_tokens_s"] == 150.0
    assert rows["major_faults_per_token"] == rows["major_faults"] / 16  # the suite's 16 tokens
    assert not _cgroup_of(out.err).exists()  # removed after the run


def test_a_limit_below_what_the_program_needs_is_exit_2_and_nothing_is_stored(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    grow = f'exec {sys.executable} -c "x = bytearray(256 << 20)"'
    root, model, _ = _catalogue(tmp_path, grow)
    out = run(root, "bench", "v", "--model", f"m={model}", "--suite", "faults", "--memory-max", "32M")
    assert out.code == 2
    assert (
        "llama-completion was killed by the memory limit of profile default (memory-max = 32 MiB)" in out.err
    )
    with results.connect(root / ".variant" / "results.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        assert con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 0


def test_a_bad_memory_max_is_a_usage_error(tmp_path: Path, run: Callable[..., Any]) -> None:
    root, model, _ = _catalogue(tmp_path)
    out = run(root, "bench", "v", "--model", str(model), "--memory-max", "lots")
    assert out.code == 2 and "--memory-max" in out.err and "not a size" in out.err
    assert not (root / ".variant" / "results.sqlite").exists()


def test_a_cgroup_left_by_a_killed_run_is_removed_by_the_next_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / "variant-999999999-deadbeef"  # no such pid
    live = tmp_path / f"variant-{os.getpid()}-cafe0001"
    other = tmp_path / "system.slice"
    for d in (dead, live, other):
        d.mkdir()
    cgroup.sweep(tmp_path)
    assert not dead.exists() and live.is_dir() and other.is_dir()
