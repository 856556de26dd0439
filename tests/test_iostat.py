"""Counter deltas (builder/host/iostat.py) on samples of /proc/vmstat and /proc/diskstats from real runs
(tests/fixtures/iostat/README.md says which)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.host import iostat

FIXTURES = Path(__file__).parent / "fixtures" / "iostat"


def _snap(tmp_path: Path, name: str, when: str, at: float) -> iostat.Snapshot:
    root = tmp_path / f"{name}-{when}"
    (root / "proc").mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / f"{name}.vmstat.{when}", root / "proc" / "vmstat")
    shutil.copy(FIXTURES / f"{name}.diskstats.{when}", root / "proc" / "diskstats")
    snap = iostat.snapshot(root)
    return iostat.Snapshot(at, snap.vmstat, snap.disks)


def test_a_sequential_read_of_2_gib_is_its_bytes_requests_and_time(tmp_path: Path) -> None:
    """dd of 2 GiB in 4.43 s: the device read 2.156 GB (4,211,320 sectors) in 723 requests."""
    before, after = _snap(tmp_path, "dd", "before", 0.0), _snap(tmp_path, "dd", "after", 4.43)
    d = iostat.disk_delta(before, after, "vda")
    assert d is not None
    assert d["read_mb"] == pytest.approx(4_211_320 * 512 / 1e6)
    assert d["read_mb_s"] == pytest.approx(d["read_mb"] / 4.43)
    assert d["read_iops"] == pytest.approx(723 / 4.43)
    assert d["avg_read_kib"] == pytest.approx(4_211_320 * 512 / 1024 / 723)  # ~2.9 MiB: merged requests
    assert d["read_await_ms"] == pytest.approx((5583885 - 5577757) / 723)
    assert d["util_pct"] == pytest.approx((506124 - 504004) / 4430 * 100)
    vm = iostat.vm_delta(before, after)
    assert vm["pgpgin"] == 281706265 - 279600605  # KiB: the 2 GiB, and a little else on the machine
    assert vm["pgmajfault"] == 3


def test_an_mmap_load_reads_the_model_with_few_major_faults(tmp_path: Path) -> None:
    """llama-simple's mmap load of 5.9 GiB: 6 GB from the disk, 7 major faults system-wide (readahead)."""
    before, after = _snap(tmp_path, "mmap", "before", 0.0), _snap(tmp_path, "mmap", "after", 12.69)
    d = iostat.disk_delta(before, after, "vda")
    assert d is not None and d["read_mb"] == pytest.approx((575474570 - 563412882) * 512 / 1e6)
    vm = iostat.vm_delta(before, after)
    assert vm["pgpgin"] == 287737285 - 281706441
    assert vm["pgmajfault"] == 7 and vm["pgfault"] == 530454337 - 530416705
    assert vm["thp_fault_alloc"] == 0
    assert "pgscan" in vm and "pgsteal" in vm  # summed over kswapd, direct, khugepaged


def test_a_device_neither_snapshot_knows_has_no_figures(tmp_path: Path) -> None:
    before, after = _snap(tmp_path, "dd", "before", 0.0), _snap(tmp_path, "dd", "after", 1.0)
    assert iostat.disk_delta(before, after, "nvme9n1") is None
    assert iostat.devices(["vda", None, "vda", "loop0"]) == ("vda", "loop0")


def test_an_idle_interval_is_zeros_not_a_division_by_zero(tmp_path: Path) -> None:
    same = _snap(tmp_path, "dd", "before", 0.0)
    d = iostat.disk_delta(same, iostat.Snapshot(2.0, same.vmstat, same.disks), "vda")
    assert d == {"read_mb_s": 0.0, "read_iops": 0.0, "avg_read_kib": 0.0, "read_await_ms": 0.0,
                 "util_pct": 0.0, "read_mb": 0.0}  # fmt: skip


def test_lines_of_another_format_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "diskstats").write_text("   8 0 sda 1 2 3\n 254 0 vda " + " ".join("7" * 17) + "\n")
    (tmp_path / "proc" / "vmstat").write_text("pgpgin 5\nbroken line\nnr_free_pages x\n")
    assert list(iostat.read_diskstats(tmp_path)) == ["vda"]
    assert iostat.read_vmstat(tmp_path) == {"pgpgin": 5}


def test_this_machine_reads_without_error() -> None:
    """The real /proc: its shape, never its values."""
    snap = iostat.snapshot()
    assert "pgpgin" in snap.vmstat and all(d.sectors >= 0 for d in snap.disks.values())


def test_a_case_records_what_the_device_and_page_cache_did_around_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/observe.py: snapshots around the program, its figures beside the case's; none on a timeout."""
    from builder.bench import case, observe
    from builder.bench.profiles import Profile
    from builder.layout import Layout
    from builder.models.installed import Installed
    from builder.run import Measured

    before, after = _snap(tmp_path, "dd", "before", 0.0), _snap(tmp_path, "dd", "after", 4.43)
    snaps = iter([before, after])
    monkeypatch.setattr(iostat, "snapshot", lambda root=None: next(snaps))
    monkeypatch.setattr(observe, "device_of", lambda path: "vda")
    done = Measured(("dd",), 0, "", "", 4.43, 0.5, 3.5, 360, 1, 4096, 0)
    monkeypatch.setattr(case.Context, "run", lambda self, inst, argv, target=None, **_: done)
    ctx = case.Context(Layout.at(tmp_path), Profile(), (2,), lambda _m: None)
    target = case.Target(tmp_path / "m.gguf", {"model": "m"}, 1 << 30)
    m, figures = observe.observed(ctx, Installed("v", tmp_path, {}), ["dd"], target, "load", {"model": "m"})
    got = {f.metric: f.value for f in figures}
    assert m is done and {f.suite for f in figures} == {"load"}
    assert got["disk_read_mb"] == pytest.approx(4_211_320 * 512 / 1e6)
    assert got["disk_avg_read_kib"] == pytest.approx(4_211_320 * 512 / 1024 / 723)
    assert got["sys_pgpgin_mb"] == pytest.approx((281706265 - 279600605) * 1024 / 1e6)
    assert got["sys_major_faults"] == 3 and got["cpu_busy"] == pytest.approx(4.0 / 4.43)
    assert got["sys_faults"] == 10451 and got["disk_read_iops"] == pytest.approx(723 / 4.43)
    assert got["sys_pgscan"] == got["sys_pgsteal"] == 0  # 2 GiB read on a machine with room for it
    killed = Measured(("dd",), None, "", "", 9.0, 0.0, 0.0, 0, 0, 0, 0)
    snaps = iter([before, iostat.Snapshot(9.0, after.vmstat, after.disks)])
    monkeypatch.setattr(case.Context, "run", lambda self, inst, argv, target=None, **_: killed)
    assert observe.observed(ctx, Installed("v", tmp_path, {}), ["dd"], target, "load", {})[1] == []


def test_io_rows_that_are_zero_for_every_variant_are_left_out_and_any_other_kept(tmp_path: Path) -> None:
    """A warm run reads nothing from disk: its disk rows would be a table of zeros in compare, report and
    PR.md (all built on compare.grouped). A row with one non-zero figure, or not an I/O figure, stays."""
    from builder.results import compare
    from builder.store import results
    from builder.store.results import Measurement

    manifest = {"hash": "h" * 64, "source": {"name": "llama.cpp", "commit": "c" * 40}}
    figures = {  # metric -> (variant a's, variant b's)
        "disk_read_mb": (0.0, 0.0),
        "sys_major_faults": (0.0, 3.0),
        "peak_rss": (0.0, 0.0),
    }
    with results.connect(tmp_path / "results.sqlite") as con:
        run = results.start_run(con, "default", "variant bench")
        for metric, pair in figures.items():
            for variant, value in zip(("a", "b"), pair, strict=True):
                m = Measurement("load", metric, "MB", {"model": "m"}, value, better="lower")
                results.record(con, run, {**manifest, "variant": variant}, 0, m)
        _, rows = compare.pair_rows(con, "a", "b", None, run)
        single = compare.single_rows(con, "a", run)
    assert sorted(r.metric for r in rows) == ["peak_rss", "sys_major_faults"]
    assert sorted(r.metric for r in single) == ["peak_rss"]
