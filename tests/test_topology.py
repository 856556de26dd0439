"""The machine's scale (builder/host/topology.py) read from fake sysfs and procfs trees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.errors import UserError
from builder.host import topology as topo
from builder.store import storecheck

GIB_KB = 1 << 20


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cpus(root: Path, cpus: dict[int, tuple[int, int]], online: str | None) -> None:
    """cpuN -> (physical_package_id, core_id)."""
    base = root / "sys/devices/system/cpu"
    if online is not None:
        _write(base / "online", online + "\n")
    for n, (pkg, core) in cpus.items():
        _write(base / f"cpu{n}/topology/physical_package_id", f"{pkg}\n")
        _write(base / f"cpu{n}/topology/core_id", f"{core}\n")


def _node(root: Path, n: int, cpulist: str, mem_kb: int) -> None:
    base = root / f"sys/devices/system/node/node{n}"
    _write(base / "cpulist", cpulist + "\n")
    _write(base / "meminfo", f"Node {n} MemTotal:  {mem_kb} kB\nNode {n} MemFree:  12 kB\n")


def _meminfo(root: Path, total_kb: int, available_kb: int) -> None:
    _write(
        root / "proc/meminfo",
        f"MemTotal:       {total_kb} kB\nMemFree:  1 kB\nMemAvailable:   {available_kb} kB\n"
        "HugePages_Total:       0\n",
    )


def test_two_sockets_two_nodes_with_smt_siblings(tmp_path: Path) -> None:
    # Package 0 holds CPUs 0,1 and their siblings 4,5; package 1 holds 2,3 and 6,7.
    # core_id restarts in each package, so the pair (package, core_id) names a core.
    cpus = {0: (0, 0), 1: (0, 1), 4: (0, 0), 5: (0, 1), 2: (1, 0), 3: (1, 1), 6: (1, 0), 7: (1, 1)}
    _cpus(tmp_path, cpus, "0-7")
    _node(tmp_path, 0, "0-1,4-5", 64 * GIB_KB)
    _node(tmp_path, 1, "2-3,6-7", 32 * GIB_KB)
    _node(tmp_path, 2, "", 16 * GIB_KB)  # memory without CPUs (CXL)
    _meminfo(tmp_path, 112 * GIB_KB, 100 * GIB_KB)
    _write(tmp_path / "sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n")
    for size in ("2048", "1048576"):
        (tmp_path / f"sys/kernel/mm/hugepages/hugepages-{size}kB").mkdir(parents=True)

    t = topo.topology(tmp_path)
    assert t.cpus == tuple(range(8)) and t.cores == 4 and t.sockets == 2
    assert [(n.id, n.cpus, n.cores, n.memory) for n in t.nodes] == [
        (0, (0, 1, 4, 5), 2, 64 << 30),
        (1, (2, 3, 6, 7), 2, 32 << 30),
        (2, (), 0, 16 << 30),
    ]
    assert t.hugepage_kb == (2048, 1048576) and t.thp == "never" and t.mem_available == 100 << 30
    assert topo.default_threads(t) == (1, 2, 4, 8)
    assert topo.default_threads(t, oversubscribe=True) == (1, 2, 4, 8, 16)
    assert topo.describe(t) == (
        "8 CPUs, 4 cores, 2 sockets, 3 NUMA nodes, 100 GiB available, huge pages 2 MiB/1 GiB, THP never"
    )


def test_the_largest_node_sets_the_one_node_step(tmp_path: Path) -> None:
    _cpus(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 2), 3: (0, 3), 4: (0, 4), 5: (0, 5)}, "0-5")
    _node(tmp_path, 0, "0", 1024)
    _node(tmp_path, 1, "1-4", 1024)
    _node(tmp_path, 2, "5", 1024)
    assert topo.default_threads(topo.topology(tmp_path)) == (1, 4, 6)


def test_offline_cpus_are_left_out(tmp_path: Path) -> None:
    _cpus(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 2), 3: (0, 3)}, "0-1,3")
    _node(tmp_path, 0, "0-3", 1024)
    t = topo.topology(tmp_path)
    assert t.cpus == (0, 1, 3) and t.cores == 3 and t.nodes[0].cpus == (0, 1, 3)


def test_one_node_machine_without_node_or_topology_files(tmp_path: Path) -> None:
    base = tmp_path / "sys/devices/system/cpu"
    for n in range(4):
        (base / f"cpu{n}").mkdir(parents=True)  # no online file, no topology/
    (base / "cpufreq").mkdir()
    _meminfo(tmp_path, 8 * GIB_KB, 6 * GIB_KB)
    t = topo.topology(tmp_path)
    assert t.cpus == (0, 1, 2, 3) and t.cores == 4 and t.sockets == 1
    assert t.nodes == (topo.Node(0, (0, 1, 2, 3), 4, 8 << 30),)
    assert topo.default_threads(t) == (1, 4)


def test_an_empty_tree_is_the_smallest_machine(tmp_path: Path) -> None:
    t = topo.topology(tmp_path)
    assert (t.cpus, t.cores, t.sockets, len(t.nodes)) == ((0,), 1, 1, 1)
    assert (t.hugepage_kb, t.thp, t.mem_available, t.nodes[0].memory) == ((), None, None, None)
    assert topo.default_threads(t) == (1,) and topo.describe(t) == "1 CPU, 1 core, 1 socket, 1 NUMA node"
    with pytest.raises(UserError, match=r"proc/meminfo: no MemAvailable"):
        topo.mem_available(tmp_path)


def test_mem_available_in_bytes(tmp_path: Path) -> None:
    _meminfo(tmp_path, 16, 12)
    assert topo.mem_available(tmp_path) == 12 * 1024


def test_cpu_lists_round_trip() -> None:
    assert topo.parse_cpulist("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert topo.parse_cpulist("") == ()
    assert topo.format_cpulist([11, 0, 1, 2, 3, 8, 10]) == "0-3,8,10-11"
    assert topo.format_cpulist([]) == ""


def _link(root: Path, majmin: str, target: str) -> None:
    """sys/dev/block/MAJ:MIN as the kernel makes it: a relative symlink into sys/devices."""
    (root / "sys/devices" / target).mkdir(parents=True, exist_ok=True)
    (root / "sys/dev/block").mkdir(parents=True, exist_ok=True)
    os.symlink(f"../../devices/{target}", root / "sys/dev/block" / majmin)


MOUNTINFO = """\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 27 8:17 / /mnt/my\\040models rw,relatime shared:5 master:2 - xfs /dev/sdb1 rw
31 27 7:0 / /mnt/img rw - squashfs /dev/loop0 ro
32 27 0:30 / /tmp rw,nosuid - tmpfs tmpfs rw,size=100k
33 27 0:45 /@home /home rw - btrfs /dev/sda2 rw,subvol=/@home
34 27 0:31 / /mnt/img rw - overlay overlay rw,lowerdir=/a
35 27 0:32 / /mnt/other rw - nfs4 server:/export rw
"""


@pytest.fixture
def disks(tmp_path: Path) -> Path:
    _write(tmp_path / "proc/self/mountinfo", MOUNTINFO)
    _link(tmp_path, "254:0", "pci0000:00/virtio1/block/vda")
    _write(tmp_path / "sys/devices/pci0000:00/virtio1/block/vda/queue/rotational", "0\n")
    _link(tmp_path, "8:17", "pci0000:00/ata1/block/sdb/sdb1")
    _write(tmp_path / "sys/devices/pci0000:00/ata1/block/sdb/sdb1/partition", "1\n")
    _write(tmp_path / "sys/devices/pci0000:00/ata1/block/sdb/queue/rotational", "1\n")
    _link(tmp_path, "7:0", "virtual/block/loop0")
    _write(tmp_path / "sys/devices/virtual/block/loop0/loop/backing_file", "/srv/images/models.img\n")
    (tmp_path / "sys/devices/pci0000:00/ata1/block/sda/sda2").mkdir(parents=True)
    _write(tmp_path / "sys/devices/pci0000:00/ata1/block/sda/sda2/partition", "2\n")
    (tmp_path / "sys/class/block").mkdir(parents=True)
    os.symlink("../../devices/pci0000:00/ata1/block/sda/sda2", tmp_path / "sys/class/block/sda2")
    return tmp_path


def test_storage_of_a_disk_a_partition_and_an_escaped_mount_point(disks: Path) -> None:
    assert topo.storage(Path("/home2/m.gguf"), disks) == topo.Storage(
        "ext4", "/", "/dev/vda", "vda", "vda", None, False
    )
    assert topo.storage(Path("/mnt/my models/r1/x.gguf"), disks) == topo.Storage(
        "xfs", "/mnt/my models", "/dev/sdb1", "sdb1", "sdb", None, True
    )
    # "/mnt/my" is no mount point: the prefix is matched by path components.
    assert topo.storage(Path("/mnt/my/x.gguf"), disks).mount_point == "/"


def test_storage_of_an_overmount_tmpfs_btrfs_and_nfs(disks: Path) -> None:
    # /mnt/img is mounted twice: the overlay, mounted last, is what a path there reaches.
    assert topo.storage(Path("/mnt/img/x.gguf"), disks) == topo.Storage("overlay", "/mnt/img", "overlay")
    assert topo.storage(Path("/tmp/x.gguf"), disks) == topo.Storage("tmpfs", "/tmp", "tmpfs")
    assert topo.storage(Path("/mnt/other/x"), disks) == topo.Storage("nfs4", "/mnt/other", "server:/export")
    home = topo.storage(Path("/home/u/x.gguf"), disks)
    assert (home.fstype, home.device, home.disk, home.rotational) == ("btrfs", "sda2", "sda", None)


def test_storage_of_a_loop_device(tmp_path: Path) -> None:
    _write(tmp_path / "proc/self/mountinfo", "31 1 7:0 / /mnt/img rw - squashfs /dev/loop0 ro\n")
    _link(tmp_path, "7:0", "virtual/block/loop0")
    _write(tmp_path / "sys/devices/virtual/block/loop0/loop/backing_file", "/srv/images/models.img\n")
    _write(tmp_path / "sys/devices/virtual/block/loop0/queue/rotational", "0\n")
    s = topo.storage(Path("/mnt/img/x.gguf"), tmp_path)
    assert (s.device, s.disk, s.rotational) == ("loop0", "loop0", False)
    assert s.backing_file == "/srv/images/models.img"
    assert topo.storage(Path("/elsewhere"), tmp_path) == topo.Storage()
    assert topo.storage(Path("/x"), tmp_path / "nothing") == topo.Storage()


def test_hardware_record_names_files_not_paths(disks: Path) -> None:
    _cpus(disks, {0: (0, 0), 1: (0, 0)}, "0-1")
    _node(disks, 0, "0-1", 4 * GIB_KB)
    _meminfo(disks, 4 * GIB_KB, 3 * GIB_KB)
    _write(disks / "proc/self/mountinfo", MOUNTINFO + "40 27 7:0 / /srv/private rw - ext4 /dev/loop0 rw\n")
    # the model of the first CPU, its spaces collapsed (PR.md's tables name it)
    _write(
        disks / "proc/cpuinfo",
        "".join(f"processor\t: {n}\nmodel name\t: Fake  CPU {n} @ 2GHz\n\n" for n in (0, 1)),
    )
    paths = [Path("/mnt/my models/secret-dir/a.gguf"), Path("/srv/private/b.gguf"), Path("/tmp/x/a.gguf")]
    record = topo.hardware(paths, disks)
    text = json.dumps(record, ensure_ascii=False)
    assert "secret-dir" not in text and "/srv/images" not in text
    # no mount point or mount source either: /mnt/my models, /srv/private, /dev/sdb1 are local paths
    assert "/mnt" not in text and "/srv" not in text and "/dev/" not in text
    assert record["storage"]["b.gguf"]["backing_file"] == "models.img"
    assert record["storage"]["a.gguf"]["disk"] == "sdb"
    assert record["storage"]["a.gguf (2)"]["fstype"] == "tmpfs"
    assert {k: v for k, v in record.items() if k != "storage"} == {
        "cpu_model": "Fake CPU 0 @ 2GHz",
        "sockets": 1,
        "numa_nodes": [{"id": 0, "cpus": "0-1", "physical_cores": 1, "memory_bytes": 4 << 30}],
        "physical_cores": 1,
        "logical_cpus": 2,
        "hugepage_sizes_kb": [],
        "thp": None,
        "mem_available_bytes": 3 << 30,
    }


def test_a_file_name_that_is_not_utf8_is_recorded_as_text(disks: Path) -> None:
    _cpus(disks, {0: (0, 0)}, "0")
    _meminfo(disks, 4 * GIB_KB, 3 * GIB_KB)
    _write(disks / "proc/self/mountinfo", MOUNTINFO)
    name = os.fsdecode(b"mod\xe9le.gguf")  # Latin-1, as an old file system may hold
    record = topo.hardware([Path("/mnt/my models") / name], disks)
    assert list(record["storage"]) == ["mod\ufffdle.gguf"]
    assert record["cpu_model"] is None  # no /proc/cpuinfo, or no "model name" in it (most Arm kernels)
    storecheck.hardware_json(record)  # what the store takes: Unicode text only


def test_this_machine_reads_without_error() -> None:
    """A smoke run on the real machine: its shape, never its values."""
    t = topo.topology()
    assert 1 <= t.cores <= len(t.cpus) and t.sockets >= 1 and t.nodes
    assert set().union(*(n.cpus for n in t.nodes)) <= set(t.cpus)
    threads = topo.default_threads(t)
    assert threads[0] == 1 and threads[-1] == len(t.cpus) and list(threads) == sorted(set(threads))
    record = topo.hardware([Path("/")])
    assert json.loads(json.dumps(record)) == record and record["logical_cpus"] == len(t.cpus)
    assert topo.describe(t)
