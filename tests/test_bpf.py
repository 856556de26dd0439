"""`variant profile --tool bpf` (builder/profile/bpf.py) and the tracers' lifecycle (builder/background.py):
parsing on outputs recorded from a real run (a 5.75 GiB f16 model under a 2 GiB memory cgroup, two
threads), and the tracers attached for real around a cold read (these tests run as root, as CI does)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.background import tracing
from builder.bench import pagecache
from builder.errors import UserError
from builder.profile import bpf

from .tools import capable

FIXTURES = Path(__file__).parent / "fixtures" / "bpf"


def _bin(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text("")
    return tmp_path


def test_off_cpu_stacks_are_the_programs_own_root_first_without_the_tracers_frames(tmp_path: Path) -> None:
    text = (FIXTURES / "offcputime-2g-limit.txt").read_text()
    programs = bpf.programs_of(_bin(tmp_path, "llama-completion", "llama-bench"))
    assert programs == frozenset({"llama-completio", "llama-bench"})  # the kernel's 15 bytes
    prof = bpf.fold_offcpu(text, programs)
    # every block of llama-completion's threads, counted independently of the parser
    blocks = re.findall(r"-\s+llama-completio \(\d+\)\n\s+(\d+)\n", text)
    assert prof.unit == "us" and prof.total == sum(map(int, blocks)) > 0
    assert all(s[0] == "llama-completio" for s in prof.stacks)
    assert not any(f.startswith("bpf_") for s in prof.stacks for f in s)
    faults = [s for s in prof.stacks if "filemap_fault" in s]
    assert faults and all(s.index("handle_mm_fault") < s.index("filemap_fault") for s in faults)  # root first
    assert all(s[-1] in ("__schedule", "schedule") or "sched" in s[-1] for s in prof.stacks)
    assert bpf.fold_offcpu(text, frozenset({"llama-bench"})).total == 0  # no stack of its: nothing


def test_the_latency_histogram_gives_requests_mean_and_percentiles() -> None:
    text = (FIXTURES / "biolatency-2g-limit.txt").read_text()
    buckets = bpf.parse_histogram(text)
    counts = [int(n) for n in re.findall(r"->\s*\d+\s*:\s*(\d+)", text)]
    assert [n for _, _, n in buckets] == counts and sum(counts) > 1000
    s = bpf.summary(buckets)
    assert s["requests"] == sum(counts)
    assert buckets[0][0] <= s["mean_us"] <= buckets[-1][1] and s["p50_us"] <= s["p99_us"]
    assert bpf.summary([]) == {} and bpf.summary(bpf.parse_histogram("no I/O")) == {}


def test_the_page_cache_count_is_read_back_zero_when_attached_without_pages_and_none_when_not() -> None:
    assert bpf.parse_added((FIXTURES / "cache-2g-limit.txt").read_text()) == 5961550
    assert bpf.parse_added("Attaching 2 probes...\nattached\n") == 0
    assert bpf.parse_added("ERROR: Could not resolve tracepoint\n") is None


def test_the_cache_script_holds_inode_numbers_only() -> None:
    script = bpf.cache_script([12, 345])
    assert "args->i_ino == 12 || args->i_ino == 345" in script
    assert set(re.findall(r"\d+", script)) == {"12", "345", "1"}  # the inodes, and 1 << order
    assert "/0/" in bpf.cache_script([])  # no model file: the filter matches nothing


def test_figures_say_how_often_the_model_came_through_the_page_cache(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"\0" * (64 * bpf.PAGE))
    (tmp_path / "biolatency.txt").write_text((FIXTURES / "biolatency-2g-limit.txt").read_text())
    (tmp_path / "cache.txt").write_text("attached\n@added: 128\n")  # the model read twice
    t = bpf.Tracers(tmp_path, (model,), None, frozenset())
    figures = {name: value for name, _, value, _ in t.figures(passes=4)}
    assert figures["cache_model_reads"] == 2.0 and figures["cache_hit_ratio"] == 0.5
    assert figures["bio_requests"] > 0
    assert "cache_hit_ratio" not in {name for name, *_ in t.figures(passes=None)}


def test_bpf_is_refused_without_root_btf_or_the_tracepoint(tmp_path: Path) -> None:
    assert "needs root" in str(bpf.refusal(euid=1000))
    assert "no BTF" in str(bpf.refusal(euid=0, btf=tmp_path / "vmlinux"))
    assert "not visible" in str(bpf.refusal(euid=0, tracefs=(tmp_path,)))
    assert "bpftrace missing (apt-get install -y bpftrace" in str(
        bpf.refusal(euid=0, which=lambda t: None if t == "bpftrace" else "/usr/bin/" + t)
    )


def test_the_tracers_see_a_cold_read_of_the_model_for_real(tmp_path: Path) -> None:
    """A 32 MiB file evicted, then read by a program named as a variant's: its pages come into the page
    cache (counted by inode) and its waits for the disk are off-CPU stacks through the read path."""
    capable(bpf.refusal())  # root, the tools and tracefs, which make setup provides
    model = tmp_path / "model.gguf"
    model.write_bytes(os.urandom(32 << 20))
    os.sync()
    pagecache.evict(model)
    reader = tmp_path / "llama-simple"
    reader.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'rb').read()\n")
    reader.chmod(0o755)
    t = bpf.Tracers(tmp_path / "out", (model,), None, frozenset({"llama-simple"}))
    with t.attached():
        subprocess.run([str(reader), str(model)], check=True)
    figures = {name: value for name, _, value, _ in t.figures(passes=1)}
    assert figures["cache_model_reads"] >= 0.99 and figures["cache_hit_ratio"] <= 0.01
    waits = t.fold()["off-cpu"]
    assert waits.stacks and all(s[0] == "llama-simple" for s in waits.stacks)
    reads = [
        s for s in waits.stacks if any(f.startswith(("filemap_read", "folio_wait", "io_schedule")) for f in s)
    ]
    assert reads, sorted(waits.stacks)[:5]  # the reader blocked in the page cache's read path


def test_a_tracer_that_dies_before_it_is_attached_is_a_user_error_with_its_stderr(tmp_path: Path) -> None:
    with (
        pytest.raises(UserError, match=r"(?s)stopped before it was attached \(exit 3\).*no such disk"),
        tracing(["sh", "-c", "echo no such disk >&2; exit 3"], tmp_path / "t.txt", "Tracing"),
    ):
        pass


def test_a_tracer_is_stopped_with_sigint_and_killed_if_it_ignores_it(tmp_path: Path) -> None:
    polite = "trap 'echo summary; exit 0' INT; echo Tracing; while :; do sleep 0.1; done"
    with tracing(["sh", "-c", polite], tmp_path / "polite.txt", "Tracing"):
        pass
    assert (tmp_path / "polite.txt").read_text() == "Tracing\nsummary\n"
    deaf = "trap '' INT; echo Tracing; while :; do sleep 0.1; done"
    t0 = time.monotonic()
    with tracing(["sh", "-c", deaf], tmp_path / "deaf.txt", "Tracing", grace=0.5):
        pass
    assert time.monotonic() - t0 < 10 and (tmp_path / "deaf.txt").read_text() == "Tracing\n"
