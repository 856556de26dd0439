"""Real llama.cpp from the offline source (the pinned llama-cpp-python sdist): minutes, marked slow.

Set VARIANT_DOWNLOADS to a folder that already holds the sdist to skip the
77 MB download when running these locally; CI downloads it with pip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.bench import pagecache
from builder.run import Measured
from builder.smoke import smoke as smoke_mod
from builder.verify import elf

from .conftest import REPO, shipped_variant
from .tools import need

pytestmark = pytest.mark.slow
# Frame pointers on the module's gcc builds (instrument = "perf": two flags, no other change), so the
# profile test profiles builds the other tests already made instead of compiling its own (9 min).
FP = 'instrument = "perf"\n'
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n' + FP
# futex-gcc, as every test here writes it: llama-bench for the pool-placement test (--cpu-mask)
FUTEX = (
    'extends = ["_futex"]\ntoolchain = "gcc"\ntargets = ["test-barrier", "llama-simple", "llama-bench"]\n'
    + FP
)


class Cat:
    def __init__(self, root: Path) -> None:
        self.root = root

    def variant(self, name: str, extra: str = "") -> None:
        (self.root / "variants" / f"{name}.toml").write_text(shipped_variant(name, extra))

    def write(self, name: str, text: str) -> None:
        (self.root / "variants" / f"{name}.toml").write_text(text)

    def build(self, *names: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(
            self.variant_cli("build", "--offline", "--json", *names).stdout
        )
        return data

    def variant_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["variant", "--root", str(self.root), *args], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    def manifest(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "dist" / name / "manifest.json").read_text())
        return data


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cat]:
    """The shipped catalogue's sources and toolchains, variants trimmed to test-barrier."""
    root = tmp_path_factory.mktemp("llama")
    (root / "variants").mkdir()
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    shutil.copy(REPO / "sources.toml", root / "sources.toml")
    for mixin in (REPO / "variants").glob("_*.toml"):
        shutil.copy(mixin, root / "variants" / mixin.name)
    saved = os.environ.get("VARIANT_DOWNLOADS")
    if not saved:
        os.environ["VARIANT_DOWNLOADS"] = str(tmp_path_factory.mktemp("downloads"))
    cat = Cat(root)
    cat.variant("upstream-gcc", TARGETS)
    cat.variant("openmp-off-gcc", TARGETS)
    yield cat
    if not saved:
        del os.environ["VARIANT_DOWNLOADS"]


def _changed_commands(root: Path, a: str, b: str) -> set[str]:
    """Sources (as src/...) whose compile command differs between two variants' builds."""

    def commands(v: str) -> dict[str, str]:
        work = root / ".variant" / "work" / v
        db = json.loads((work / "build" / "compile_commands.json").read_text())
        return {str(Path(e["file"]).relative_to(work)): e["command"].replace(str(work), "@WORK@") for e in db}

    ca, cb = commands(a), commands(b)
    return {f for f in cb if ca.get(f) != cb[f]}


def _ns_per_node(binary: Path, threads: int) -> float:
    out = subprocess.run([binary, str(threads), "5"], capture_output=True, text=True, timeout=120, check=True)
    m = re.search(r"([\d.]+) nsec per-node", out.stdout + out.stderr)
    assert m, out.stdout
    return float(m[1])


def test_two_real_variants_build_verify_and_run(llama: Cat) -> None:
    up, off = llama.build("upstream-gcc", "openmp-off-gcc")
    for m in (up, off):
        assert m["source"]["origin"] == "pypi"
        assert m["source"]["commit"] == "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
        assert all(c["ok"] for c in m["verification"]), m["verification"]
    checks = {m["variant"]: {c["check"]: c["detail"] for c in m["verification"]} for m in (up, off)}
    assert "libgomp" in checks["upstream-gcc"]["openmp"]
    assert "no OpenMP runtime" in checks["openmp-off-gcc"]["openmp"]
    assert up["source"]["base_commit"] == off["source"]["base_commit"]
    # One CMake option apart, in another worktree: exactly the files whose compile
    # command GGML_OPENMP changes (ggml's, which get -DGGML_USE_OPENMP -fopenmp) are
    # compiled again; every other one comes from the shared cache, so base_dir works.
    cc = off["ccache"]
    assert set(cc["missed"]) == _changed_commands(llama.root, "upstream-gcc", "openmp-off-gcc"), cc
    assert cc["hits"] > 50, cc
    for name in ("upstream-gcc", "openmp-off-gcc"):
        assert _ns_per_node(llama.root / "dist" / name / "bin" / "test-barrier", 2) > 0
    again = subprocess.run(
        ["variant", "--root", str(llama.root), "build", "--offline", "upstream-gcc"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in again.stderr


def test_one_file_patch_rebuilds_only_that_file(llama: Cat, tmp_path: Path) -> None:
    llama.build("openmp-off-gcc")
    wt = llama.root / ".variant" / "work" / "openmp-off-gcc" / "src"
    scratch = tmp_path / "scratch"
    subprocess.run(["git", "clone", "-q", "--shared", str(wt), str(scratch)], check=True)
    target = scratch / "ggml" / "src" / "ggml-cpu" / "ggml-cpu.c"
    text = target.read_text()
    assert "static void ggml_barrier" in text or "void ggml_barrier(" in text
    target.write_text(
        text.replace(
            "void ggml_barrier(",
            # declared first: the build's warnings check holds the test patch to -Wmissing-prototypes too
            "void ggml_barrier_touched_by_test(void);\nvoid ggml_barrier_touched_by_test(void) {}\n"
            "void ggml_barrier(",
            1,
        )
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    subprocess.run(
        ["git", "-C", str(scratch), "commit", "-q", "-a", "-m", "ggml-cpu: test patch"], env=env, check=True
    )
    sdir = llama.root / "patches" / "one-file"
    sdir.mkdir(parents=True)
    (sdir / "series.toml").write_text('description = "a one-file change"\n')
    subprocess.run(["git", "-C", str(scratch), "format-patch", "-q", "-1", "-o", str(sdir)], check=True)
    llama.variant("one-file-gcc", 'extends = ["_openmp-off"]\n' + TARGETS + 'patches = ["one-file"]\n')
    (m,) = llama.build("one-file-gcc")
    assert all(c["ok"] for c in m["verification"])
    assert m["patches"][0]["subject"] == "ggml-cpu: test patch"
    # The patched file, and the three that llama.cpp stamps with HEAD's commit: the
    # generated build-info.cpp, ggml.c (ggml-version.h) and llama.cpp (llama-version.h).
    assert sorted(m["ccache"]["missed"]) == [
        "build/common/build-info.cpp",
        "src/ggml/src/ggml-cpu/ggml-cpu.c",
        "src/ggml/src/ggml.c",
        "src/src/llama.cpp",
    ], m["ccache"]
    assert m["ccache"]["hits"] > 50


def test_smoke_bench_compare_report(llama: Cat, tmp_path: Path) -> None:
    llama.build("upstream-gcc", "openmp-off-gcc")
    smoke = llama.variant_cli("smoke", "openmp-off-gcc", "--baseline", "upstream-gcc", "--json")
    checks = json.loads(smoke.stdout)
    ran = {(c["variant"], c["binary"]) for c in checks if c["ok"] and "skipped" not in c["detail"]}
    assert {("upstream-gcc", "llama-simple"), ("openmp-off-gcc", "test-barrier")} <= ran
    greedy = next(c for c in checks if c["detail"].startswith("greedy output vs upstream-gcc"))
    assert greedy["ok"] and "identical" in greedy["detail"]

    bench = llama.variant_cli(
        "bench",
        "openmp-off-gcc",
        "--vs",
        "upstream-gcc",
        "--suite",
        "barrier",
        "--suite",
        "faults",
        "--reps",
        "2",
        "--threads",
        "1,2",
        "--timeout",
        "90",
        "--format",
        "json",
    )
    rows = json.loads(bench.stdout)
    got = {(r["suite"], r["metric"]) for r in rows}
    assert {("barrier", "ns_per_node"), ("faults", "minor_faults"), ("faults", "peak_rss")} <= got
    barrier = [r for r in rows if r["metric"] == "ns_per_node"]
    assert {r["params"]["threads"] for r in barrier} == {1, 2}
    assert all(r["baseline"]["n"] == 2 and r["candidate"]["n"] == 2 for r in barrier)
    assert all(r["verdict"] in ("faster", "slower", "within noise") for r in barrier)

    import sqlite3

    con = sqlite3.connect(llama.root / ".variant" / "results.sqlite")
    n, variants = con.execute("SELECT COUNT(*), COUNT(DISTINCT variant) FROM measurements").fetchone()
    hashes = {h for (h,) in con.execute("SELECT DISTINCT hash FROM measurements")}
    con.close()
    assert variants == 2 and n >= 2 * 2 * (2 * 2 + 6)  # variants x reps x (barrier figures + faults figures)
    assert hashes == {llama.manifest(v)["hash"] for v in ("upstream-gcc", "openmp-off-gcc")}

    stored = llama.variant_cli("compare", "upstream-gcc", "openmp-off-gcc", "--suite", "barrier")
    assert "| barrier | ns_per_node (ns, lower is better) | rounds=20 threads=1 |" in stored.stdout

    out = tmp_path / "report"
    llama.variant_cli("report", "upstream-gcc", "openmp-off-gcc", "--out", str(out))
    text = (out / "report.md").read_text()
    assert "## barrier" in text and "## faults" in text and "openmp-off-gcc vs upstream-gcc" in text
    assert (out / "barrier.png").stat().st_size > 10_000 and (out / "faults.png").stat().st_size > 10_000


def _barrier_run(binary: Path, threads: int, rounds: int = 3) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, str(threads), str(rounds)], capture_output=True, text=True, timeout=900, check=False
    )


def test_futex_barrier_series_builds_decodes_like_the_spin_barrier_and_is_tsan_clean(llama: Cat) -> None:
    """The shipped futex-yield-barrier series on the real tree, gcc and clang+TSAN."""
    shutil.copytree(REPO / "patches" / "futex-yield-barrier", llama.root / "patches" / "futex-yield-barrier")
    # The shipped variants, with the targets trimmed to what the test runs.
    llama.write("futex-gcc", FUTEX)
    tsan_spec = (REPO / "variants" / "futex-tsan-clang.toml").read_text()
    llama.write("futex-tsan-clang", re.sub(r"(?m)^targets .*$", 'targets = ["test-barrier"]', tsan_spec))
    futex, tsan = llama.build("futex-gcc", "futex-tsan-clang")
    for m in (futex, tsan):
        checks = {c["check"]: c for c in m["verification"]}
        assert all(c["ok"] for c in checks.values()), checks
        warned = checks["warnings"]["detail"]
        assert warned == "no compiler warnings in the lines the patches change (1 file(s))"
        subjects = [p["subject"] for p in m["patches"]]
        assert subjects[0] == "ggml-cpu : spin, then sleep on a futex in ggml_barrier"

    # llama.cpp's own test at 1, 2 and 4 threads on 2 CPUs: 4 takes the yield and futex
    # path (the spin barrier does not finish there; see the issue note).
    for t in (1, 2, 4):
        assert _ns_per_node(llama.root / "dist" / "futex-gcc" / "bin" / "test-barrier", t) > 0

    smoke = llama.variant_cli("smoke", "futex-gcc", "--json")
    greedy = next(c for c in json.loads(smoke.stdout) if c["detail"].startswith("greedy output vs"))
    assert greedy["detail"].startswith("greedy output vs openmp-off-gcc (its default baseline): identical"), (
        greedy
    )

    # ThreadSanitizer exits 66 on a report; run both the fitting and the oversubscribed path.
    tsan_bin = llama.root / "dist" / "futex-tsan-clang" / "bin" / "test-barrier"
    for t in (2, 4):
        out = _barrier_run(tsan_bin, t)
        assert out.returncode == 0 and "ThreadSanitizer" not in out.stderr, out.stderr[-3000:]


def _yields(argv: list[str]) -> int:
    """sched_yield calls of every thread of argv, counted by strace."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        cmd = [need("strace"), "-f", "-c", "-e", "trace=sched_yield", "-o", trace.name, *argv]
        out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        found = re.search(
            r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?sched_yield$", Path(trace.name).read_text(), re.M
        )
    return int(found[1]) if found else 0


def test_futex_barrier_counts_the_cpus_the_pools_threads_run_on(llama: Cat) -> None:
    """Review point 1 of the series: a pool's CPUs are its mask (within the CPUs online), else what
    its threads inherit when it is made, not the calling thread's mask at graph time (v1), nor a
    process snapshot."""
    shutil.copytree(
        REPO / "patches" / "futex-yield-barrier",
        llama.root / "patches" / "futex-yield-barrier",
        dirs_exist_ok=True,
    )
    llama.write("futex-gcc", FUTEX)
    llama.build("futex-gcc")  # up to date after the futex test in a full run
    model = llama.variant_cli("model", "make").stdout.strip()
    bench = [str(llama.root / "dist" / "futex-gcc" / "bin" / "llama-bench"), "-m", model, "-t", "2"]
    bench += ["-p", "0", "-n", "16", "-r", "2", "--no-warmup"]
    # --cpu-mask 0x1: both threads on CPU 0, the oversubscribed path, which yields. v1 counted the
    # calling thread's CPUs (both) and spun instead. 0x3: they fit; a waiter that fits spins, then
    # sleeps, and never yields.
    assert _yields([*bench, "-C", "0x1"]) > 0
    assert _yields([*bench, "-C", "0x3"]) == 0
    # No mask, but the thread that makes the pool is on CPU 0 (taskset): its workers inherit that
    # one CPU, counted when the pool is made, so they yield; unpinned, they fit again.
    assert _yields(["taskset", "-c", "0", *bench]) > 0
    assert _yields(bench) == 0
    # A mask naming CPUs the machine does not have counts the ones it has: 2 more threads than
    # CPUs with 2 more bits than CPUs are oversubscribed (a count of the bits spun, 4 t/s at t=4).
    online = os.cpu_count() or 1
    over = [*bench[:4], str(online + 2), *bench[5:], "-C", hex((1 << (online + 2)) - 1)]
    assert _yields(over) > 0


def test_io_uring_loader_reads_unaligned_tensors_like_the_other_load_modes(llama: Cat) -> None:
    """The shipped io-uring-loader series: every load mode decodes alike, and without io_uring too."""
    import gguf

    shutil.copytree(REPO / "patches" / "io-uring-loader", llama.root / "patches" / "io-uring-loader")
    llama.write(
        "iouring-gcc",
        'toolchain = "gcc"\npatches = ["io-uring-loader"]\nrequires = ["liburing"]\n'
        'targets = ["llama-simple", "llama-completion"]\n' + FP + "[cmake]\nLLAMA_URING = true\n",
    )
    _, m = llama.build("upstream-gcc", "iouring-gcc")  # the smoke's baseline; up to date in a full run
    checks = {c["check"]: c for c in m["verification"]}
    assert all(c["ok"] for c in checks.values()), checks
    # LLAMA_URING is off unless the spec asks for it (v2); asked for, the loader calls into liburing.
    completion = elf.read(llama.root / "dist" / "iouring-gcc" / "bin" / "llama-completion")
    assert "io_uring_queue_init" in completion.undefined | completion.defined
    assert m["patches"][0]["subject"] == "llama : io_uring model loader (--load-mode uring)"

    smoke = json.loads(
        llama.variant_cli("smoke", "iouring-gcc", "--load-mode", "none,dio,uring", "--json").stdout
    )
    modes = [c for c in smoke if c["binary"] == "llama-completion" and c["detail"].startswith("load mode")]
    assert [c["detail"].split(":")[0] for c in modes] == [
        "load mode none",
        "load mode dio",
        "load mode uring",
    ]
    assert all(c["ok"] and "identical" in c["detail"] for c in modes), modes

    # The smoke model's tensors sit at GGUF's 32-byte alignment, not at O_DIRECT's 4096:
    # the O_DIRECT path read their heads and tails through its bounce buffers.
    (model,) = (llama.root / ".variant" / "models").glob("tiny-*.gguf")
    offsets = [t.data_offset for t in gguf.GGUFReader(model).tensors]
    assert sum(o % 4096 != 0 for o in offsets) > len(offsets) // 2

    def complete(mode: str, **env: str) -> Measured:
        argv = [str(llama.root / "dist" / "iouring-gcc" / "bin" / "llama-completion"), "-m", str(model)]
        argv += ["-p", "Once upon a time", "-n", "24", "-no-cnv", "--temp", "0", "--no-warmup"]
        argv += ["--load-mode", mode, "-v", "-t", "1"]
        # smoke's rule: a run whose log lost its tail is drawn again
        out, _, _ = smoke_mod.measure_complete(argv, smoke_mod.COMPLETION_END, timeout=300, env=env)
        return out

    def read_line(out: Measured) -> str:
        assert out.returncode == 0, out.stderr[-3000:]
        found = re.search(r"llama_uring_read_all: read [\d.]+ MiB .*", out.stderr)
        return found[0] if found else ""

    # Cold: O_DIRECT. (O_DIRECT reads leave the page cache as it was.)
    pagecache.evict(model)
    uring = complete("uring")
    assert "O_DIRECT on" in read_line(uring), uring.stderr[-3000:]
    # io_uring made unavailable: one warning, then the regular loader, same text.
    off = complete("uring", LLAMA_URING_DISABLE="1")
    assert off.returncode == 0, off.stderr[-3000:]
    assert off.stderr.count("io_uring unavailable") == 1 and read_line(off) == ""
    assert off.stdout == uring.stdout and len(uring.stdout) > len("Once upon a time")
    # That load left the file in the page cache: read through it, not from the disk again.
    warm = complete("uring")
    assert "O_DIRECT off" in read_line(warm) and "in the page cache, reading through it" in warm.stderr
    assert warm.stdout == uring.stdout


def test_a_variant_becomes_a_wheel_that_decodes_like_its_own_llama_simple(llama: Cat) -> None:
    """`variant wheel` on the real llama-cpp-python sdist (scikit-build-core), then `smoke --wheel`."""
    if not (llama.root / "patches" / "futex-yield-barrier").exists():
        shutil.copytree(
            REPO / "patches" / "futex-yield-barrier", llama.root / "patches" / "futex-yield-barrier"
        )
    llama.write("futex-gcc", FUTEX)
    (futex,) = llama.build("futex-gcc")  # up to date after the futex test in a full run
    # Without the multimodal library: 127 compiles instead of 178 in CI; the rest as in a full wheel.
    out = llama.variant_cli("wheel", "--offline", "--no-mtmd", "--json", "futex-gcc")
    (record,) = json.loads(out.stdout)
    wheel = Path(record["path"])
    assert wheel.parent == llama.root / "dist" / "wheels" and wheel.is_file()
    assert f"-0.3.36+futex.gcc.{futex['hash'][:12]}.nomtmd-" in wheel.name
    assert "-DLLAVA_BUILD=OFF" in record["wheel"]["cmake_args"]
    checks = {c["check"]: c for c in record["verification"]}
    assert all(c["ok"] for c in checks.values()), checks
    # The futex barrier is in the wheel's ggml-cpu, and no OpenMP is linked or called.
    assert "'GGML_CPU_BARRIER_SPIN_US' (futex-yield-barrier) present" in checks["series-code"]["detail"]
    assert checks["openmp"]["detail"] == "no OpenMP runtime in NEEDED and no OpenMP call"
    assert "libggml-cpu.so" in checks["libraries"]["detail"]
    assert "libmtmd" not in checks["libraries"]["detail"]  # --no-mtmd took effect
    assert any(f["option"] == "BUILD_SHARED_LIBS" for f in record["forced"])
    assert json.loads(wheel.with_name(wheel.name + ".json").read_text())["hash"] == futex["hash"]

    smoke = json.loads(llama.variant_cli("smoke", "--wheel", "futex-gcc", "--json").stdout)
    assert all(c["ok"] for c in smoke), smoke
    details = [c["detail"] for c in smoke]
    assert any(
        d.startswith("greedy output of llama_cpp.Llama vs futex-gcc's llama-simple: identical")
        for d in details
    )
    installed = f"installed llama_cpp 0.3.36+futex.gcc.{futex['hash'][:12]}.nomtmd: 1 patch(es) and hash"
    assert any(d.startswith(installed) for d in details), details


def test_profile_a_real_build_against_another_and_find_the_run_in_the_report(
    llama: Cat, tmp_path: Path
) -> None:
    """`variant profile` on the module's frame-pointer builds: the futex barrier against the spin barrier."""
    import xml.etree.ElementTree as ET

    shutil.copytree(
        REPO / "patches" / "futex-yield-barrier",
        llama.root / "patches" / "futex-yield-barrier",
        dirs_exist_ok=True,
    )
    llama.write("futex-gcc", FUTEX)
    llama.build("openmp-off-gcc", "futex-gcc")  # up to date after the futex test in a full run

    # The tool a binary was not built for is refused before anything runs.
    cmd = [
        "variant",
        "--root",
        str(llama.root),
        "profile",
        "futex-gcc",
        "--tool",
        "uftrace",
        "--suite",
        "barrier",
    ]
    refused = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "needs -finstrument-functions" in refused.stderr, refused.stderr
    profiles = llama.root / ".variant" / "profiles"
    assert not profiles.exists() or not any(profiles.iterdir())

    out = tmp_path / "prof"
    data = json.loads(
        llama.variant_cli(
            "profile", "futex-gcc", "--vs", "openmp-off-gcc", "--suite", "barrier",
            "--threads", "2", "--out", str(out), "--json",
        ).stdout
    )  # fmt: skip
    assert [p["variant"] for p in data["profiles"]] == ["openmp-off-gcc", "futex-gcc"]
    for p in data["profiles"]:
        assert p["case"] == "barrier t=2" and p["total"] > 0 and set(p["events"]) == {
            "cpu-clock", "page-faults", "context-switches"
        }  # fmt: skip
        # test-barrier: small matmuls with a barrier after each. The split between the two moves with
        # the host: here about 25-33% barrier and 50% matmul, but a CI runner whose other vCPU is
        # busy showed 82% barrier (a spinning thread waits for a descheduled one). What holds
        # anywhere: both groups are recognised and together they are most of the samples.
        shares = p["shares"]
        barrier, matmul = shares["barrier and thread sync"], shares["matmul / vec-dot kernels"]
        assert barrier > 0.05 and matmul > 0.05 and barrier + matmul > 0.6, shares
        folded = (Path(p["folder"]) / "folded.txt").read_text().splitlines()
        # frame pointers walked from the barrier down to the thread's start, not one frame deep
        deep = [ln for ln in folded if ";ggml_barrier" in ln and "ggml_graph_compute" in ln]
        assert deep and all(ln.split(" ")[0].count(";") >= 3 for ln in deep[:20])
        ET.fromstring((out / p["variant"] / "flame.svg").read_text())
        assert "| barrier and thread sync |" in (out / p["variant"] / "groups.md").read_text()
    assert (out / "flame-vs.svg").is_file() and (out / "flame-vs-baseline.svg").is_file()
    assert not list(out.rglob("perf.data"))
    assert "futex-gcc vs openmp-off-gcc" in (out / "groups-vs.md").read_text()

    # Asked in the other order, the report still captions the pair as it was profiled.
    report = tmp_path / "report"
    llama.variant_cli(
        "report", "futex-gcc", "openmp-off-gcc", "--run", str(data["run"]), "--out", str(report)
    )
    text = (report / "report.md").read_text()
    assert "## profile" in text and "## Profiles (`variant profile`)" in text
    assert "a larger share in futex-gcc than in openmp-off-gcc" in text
    assert (report / "profiles" / "futex-gcc" / "flame.svg").is_file()


def test_a_model_the_generator_cannot_write_quantized_split_and_benched_as_one(
    llama: Cat, tmp_path: Path
) -> None:
    """A user's own model: quantized to Q4_K_M and split by upstream's tools (variant run), benched by path.

    The tools' build shares the module's objects through ccache (the same flags): only their own
    sources compile.
    """
    llama.write(
        "tools-gcc",
        'toolchain = "gcc"\ntargets = ["llama-quantize", "llama-gguf-split", "llama-bench", "llama-simple"]\n'
        + FP,
    )
    llama.build("tools-gcc")
    tiny = Path(llama.variant_cli("model", "make").stdout.strip())
    folder = tmp_path / "my models ü"
    folder.mkdir()
    q4 = folder / "tiny q4km.gguf"
    llama.variant_cli("run", "tools-gcc", "llama-quantize", str(tiny), str(q4), "Q4_K_M")
    split = llama.variant_cli(
        "run",
        "tools-gcc",
        "llama-gguf-split",
        "--split",
        "--split-max-tensors",
        "8",
        str(q4),
        str(folder / "part"),
    )
    parts = sorted(folder.glob("part-*-of-*.gguf"))
    assert len(parts) >= 2, split.stdout
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for p in parts:  # the same model renamed and moved keeps its identity
        shutil.copy(p, moved / p.name.replace("part", "renamed"))

    def bench(ref: str) -> list[dict[str, Any]]:
        out = llama.variant_cli(
            "bench", "tools-gcc", "--model", ref, "--suite", "e2e", "--threads", "1", "--reps", "1",
            "--format", "json",
        )  # fmt: skip
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows

    rows = bench(f"mine={parts[1]}")  # any part names the whole model
    assert {r["metric"] for r in rows} == {"pp_tps", "tg_tps", "cpu_s_per_token"}
    params = rows[0]["params"]
    assert params["model"] == "mine" and f"{len(parts)} parts" in params["model_about"]
    assert " q4_k" in params["model_about"]
    import sqlite3

    con = sqlite3.connect(llama.root / ".variant" / "results.sqlite")
    stored = json.dumps([list(r) for r in con.execute("SELECT * FROM measurements")], ensure_ascii=False)
    stored += json.dumps([list(r) for r in con.execute("SELECT * FROM runs")], ensure_ascii=False)
    con.close()
    for text in (json.dumps(rows, ensure_ascii=False), stored):  # no path of the user's: not the folder
        assert "my models ü" not in text and str(tmp_path) not in text
    assert all(r["candidate"]["median"] > 0 for r in rows)
    again = bench(str(moved / parts[0].name.replace("part", "renamed")))
    assert {r["params"]["model_id"] for r in again} == {params["model_id"]}

    smoke = json.loads(
        llama.variant_cli("smoke", "tools-gcc", "--model", f"mine={parts[0]}", "--json").stdout
    )
    assert any(c["binary"] == "llama-simple" and c["ok"] and "[mine]" in c["detail"] for c in smoke), smoke
