"""A memory cgroup around the benchmark processes: a model larger than the limit streams from disk.

The big-model case (a 377 GiB model on a machine whose RAM holds part of it)
made small: with `memory-max` in a run profile, every benchmark process runs
in one memory cgroup, whose limit counts the page cache its reads bring in,
so a 6 GiB model under a 2 GiB limit is read from disk again on every pass
over its weights, as on the seed's machine. cgroup v2 where its memory
controller is mounted, else v1's (Debian's hybrid layout: v1 at
/sys/fs/cgroup/memory). Creating one needs root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

log = logging.getLogger("variant")
ROOT = Path("/sys/fs/cgroup")
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.I)
SMALLEST = 1 << 20  # a limit below a MiB is a typo (a number of bytes meant as MiB)
# Enter the cgroup, then become the program (exec: same pid, so the caller's wait4 and rusage are the
# program's). A fixed script: the cgroup's file and the argv come as arguments, never as shell text.
ENTER = 'echo $$ > "$0" && exec "$@"'


def parse_size(text: str) -> int:
    """Bytes of "2G", "512M", "1.5GiB" or a plain number of bytes (binary units); ValueError otherwise."""
    m = SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size (expected e.g. 2G, 512M, 1.5GiB)")
    size = int(float(m[1]) * UNITS[m[2].upper()])
    if size < SMALLEST:
        raise ValueError(f"{text!r} is below 1 MiB (give a unit: 2G, 512M)")
    return size


def shown(size: int) -> str:
    return f"{size / 2**30:g} GiB" if size % (1 << 30) == 0 else f"{size / 2**20:.0f} MiB"


@dataclass(frozen=True)
class Controller:
    version: int  # 1 or 2
    base: Path  # where a new cgroup is made: v1's memory hierarchy, or v2's root


def controller(root: Path = ROOT) -> Controller | None:
    """The memory controller this machine mounts: cgroup v2's when it has it, else v1's; None."""

    def v2_memory(path: Path) -> bool:
        try:
            return "memory" in (path / "cgroup.controllers").read_text().split()
        except OSError:
            return False

    if v2_memory(root):
        return Controller(2, root)
    if (root / "memory" / "memory.limit_in_bytes").is_file():
        return Controller(1, root / "memory")
    if v2_memory(root / "unified"):  # hybrid, memory on the v2 side
        return Controller(2, root / "unified")
    return None


def refusal(root: Path = ROOT, euid: int | None = None) -> str | None:
    """Why a memory-limited run cannot happen here (None: it can)."""
    found = controller(root)
    if found is None:
        return (
            f"this machine mounts no memory cgroup controller under {root} (neither cgroup v2's "
            "memory.max nor v1's memory hierarchy)"
        )
    if (os.geteuid() if euid is None else euid) != 0:
        return f"it needs root, to create a memory cgroup under {found.base} (run as root; or no memory-max)"
    return None


@dataclass(frozen=True)
class Cgroup:
    path: Path
    version: int
    limit: int  # bytes

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def prefix(self) -> list[str]:
        """What goes in front of a program's argv to run it in this cgroup."""
        return ["sh", "-c", ENTER, str(self.procs)]

    def oom_kills(self) -> int:
        """How many processes the limit has killed (v1: memory.oom_control, v2: memory.events)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return 0
        m = re.search(r"^oom_kill (\d+)$", text, re.M)
        return int(m[1]) if m else 0

    def peak(self) -> int | None:
        """The most the cgroup held, page cache included (bytes), if the kernel says."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise UserError(f"cannot set {path} to {value}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def limited(limit: int, root: Path = ROOT) -> Iterator[Cgroup]:
    """A new memory cgroup with this limit and no swap, removed afterwards (its page cache moves up)."""
    if why := refusal(root):
        raise UserError(f"memory-max = {shown(limit)}: {why}")
    found = controller(root)
    assert found is not None  # refusal said there is one
    sweep(found.base)
    path = found.base / f"variant-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
    except OSError as exc:
        raise UserError(f"memory-max: cannot create the cgroup {path}: {exc.strerror or exc}") from exc
    try:
        if found.version == 1:
            _write(path / "memory.limit_in_bytes", str(limit))
            swap = path / "memory.memsw.limit_in_bytes"  # memory+swap no larger than memory
        else:
            subtree = found.base / "cgroup.subtree_control"
            try:
                enabled = subtree.read_text().split()
            except OSError as exc:
                raise UserError(f"memory-max: cannot read {subtree}: {exc.strerror or exc}") from exc
            if "memory" not in enabled:
                _write(subtree, "+memory")
            _write(path / "memory.max", str(limit))
            swap = path / "memory.swap.max"
        if swap.is_file():
            _write(swap, str(limit) if found.version == 1 else "0")
        elif swapping():
            # without swap accounting the programs could spill past the limit into swap unseen
            raise UserError(
                f"memory-max: this kernel does not account swap per cgroup ({swap.name} is missing) and "
                "swap is on: the limit would not hold; turn swap off (swapoff -a) or boot with swapaccount=1"
            )
        yield Cgroup(path, found.version, limit)
    finally:
        _remove(path)


def swapping() -> bool:
    """Whether any swap is on (/proc/swaps has a line past its header)."""
    try:
        return len(Path("/proc/swaps").read_text().splitlines()) > 1
    except OSError:
        return False


def sweep(base: Path) -> None:
    """Remove the cgroups of runs whose process is gone (killed with SIGKILL: no finally ran)."""
    for stale in base.glob("variant-*-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove(stale, tries=1)


def _remove(path: Path, tries: int = 50) -> None:
    """rmdir once its processes are gone: what is left is killed (a program outliving its run)."""
    for _ in range(tries):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            with contextlib.suppress(OSError, ValueError):
                for pid in (path / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1)
    log.warning("could not remove the memory cgroup %s: a process is still in it", path)
