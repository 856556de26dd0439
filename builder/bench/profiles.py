"""Run profiles (profiles.toml): threads, CPU pinning, scheduler policy, NUMA, environment, competing load.

The experiments people run by hand (pinned vs not, SCHED_FIFO vs CFS,
OMP_PROC_BIND, a CPU hog beside the benchmark) become one `--profile NAME`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .. import tomlfile as tf
from ..background import background
from ..errors import SpecError, UserError
from ..host import cgroup
from ..run import capture

KEYS = ("description", "threads", "cpus", "policy", "priority", "env", "load-cpus", "timeout",
        "numa", "interleave", "memory-max")  # fmt: skip
POLICIES = {"other": "-o", "batch": "-b", "idle": "-i", "fifo": "-f", "rr": "-r"}
# llama.cpp's --numa values: spread threads over the nodes, keep them on the node the
# program started on, or take the CPU map numactl/taskset gave the process.
NUMA = ("distribute", "isolate", "numactl")
INTERLEAVE = ("numactl", "--interleave=all")


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    description: str = "no pinning, the default scheduler"
    threads: tuple[int, ...] = ()  # empty: each suite's default
    cpus: str | None = None  # taskset -c list, e.g. "0-1"
    policy: str | None = None  # chrt policy
    priority: int = 0
    env: tuple[tuple[str, str], ...] = field(default=())
    load_cpus: str | None = None  # run a CPU-bound hog pinned here during every measurement
    timeout: float = 120.0  # per benchmark process
    timeout_given: bool = False  # by the profile or --timeout: then not scaled to a user's model's size
    profiler: tuple[str, ...] = ()  # `variant profile`: perf or uftrace record ... -- in front of the program
    numa: str | None = None  # llama.cpp's --numa, passed by the suites through numa_args()
    interleave: bool = False  # numactl --interleave=all: pages spread over every node
    memory_max: int | None = None  # bytes: every benchmark process in a memory cgroup of this limit
    cgroup: cgroup.Cgroup | None = None  # that cgroup, while a run holds it (runner.py)

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv with taskset, chrt and numactl in front (all exec the program: same pid, same rusage).

        numactl goes outside the profiler, so the profiler records the program
        itself; numactl's memory policy is inherited through the profiler's exec.
        The cgroup is entered first: whatever runs after it is charged to it.
        """
        out = [*self.profiler, *argv]
        if self.interleave:
            out = [*INTERLEAVE, *out]
        if self.policy:
            out = ["chrt", POLICIES[self.policy], str(self.priority), *out]
        if self.cpus:
            out = ["taskset", "-c", self.cpus, *out]
        if self.cgroup:
            out = [*self.cgroup.prefix(), *out]
        return out

    def numa_args(self) -> list[str]:
        """llama.cpp's `--numa MODE` for the programs that take it, or nothing."""
        return ["--numa", self.numa] if self.numa else []


def load(root: Path, name: str) -> Profile:
    path = root / "profiles.toml"
    data = tf.load(path) if path.is_file() else {}
    if name == "default" and name not in data:
        return Profile()
    if name not in data:
        raise UserError(f'unknown profile "{name}"' + tf.suggest(name, [*data, "default"]) + f" (in {path})")
    entry = data[name]
    if not isinstance(entry, dict):
        raise SpecError(path, name, "expected a table")
    p = f"{name}."
    tf.check_keys(path, entry, KEYS, p)
    threads = entry.get("threads", [])
    if not isinstance(threads, list) or not all(isinstance(t, int) and t > 0 for t in threads):
        raise SpecError(path, p + "threads", "expected an array of positive integers")
    priority = entry.get("priority", 0)
    if not isinstance(priority, int):
        raise SpecError(path, p + "priority", "expected an integer")
    timeout = entry.get("timeout", 120)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise SpecError(path, p + "timeout", "expected a positive number of seconds")
    env = tf.get_table(path, entry, "env", p)
    for k, v in env.items():
        if not tf.ENV_NAME.fullmatch(k):
            raise SpecError(path, f"{p}env.{k}", "expected a variable name (letters, digits and _)")
        if not isinstance(v, str) or "\0" in v:
            raise SpecError(path, f"{p}env.{k}", "expected a string (without NUL bytes)")
    return Profile(
        name=name,
        description=tf.get_str(path, entry, "description", p) or "",
        threads=tuple(threads),
        cpus=tf.get_str(path, entry, "cpus", p),
        policy=tf.get_enum(path, entry, "policy", POLICIES, p),
        priority=priority,
        env=tuple(sorted(env.items())),
        load_cpus=tf.get_str(path, entry, "load-cpus", p),
        timeout=float(timeout),
        timeout_given="timeout" in entry,
        numa=tf.get_enum(path, entry, "numa", NUMA, p),
        interleave=bool(tf.get_bool(path, entry, "interleave", p)),
        memory_max=_size(path, entry, p),
    )


def _size(path: Path, entry: dict[str, object], p: str) -> int | None:
    text = tf.get_str(path, entry, "memory-max", p)
    try:
        return None if text is None else cgroup.parse_size(text)
    except ValueError as exc:
        raise SpecError(path, p + "memory-max", str(exc)) from None


def check(profile: Profile) -> None:
    """Fail early, and clearly, when the machine cannot honour the profile."""
    if profile.memory_max is not None and (why := cgroup.refusal()):
        raise UserError(f"profile {profile.name}: memory-max = {cgroup.shown(profile.memory_max)}: {why}")
    if profile.cpus or profile.load_cpus:
        if not shutil.which("taskset"):
            raise UserError(f"profile {profile.name}: taskset is missing (apt-get install -y util-linux)")
        for cpus in filter(None, (profile.cpus, profile.load_cpus)):
            res = capture(["taskset", "-c", cpus, "true"], check=False)
            if res.returncode != 0:
                raise UserError(f"profile {profile.name}: cannot pin to CPUs {cpus}: {res.stderr.strip()}")
    if profile.policy:
        res = capture(["chrt", POLICIES[profile.policy], str(profile.priority), "true"], check=False)
        if res.returncode != 0:
            raise UserError(
                f"profile {profile.name}: scheduler policy {profile.policy} (priority {profile.priority}) "
                f"is not permitted here ({res.stderr.strip() or 'chrt failed'}); real-time policies need "
                "root or CAP_SYS_NICE, and a container may forbid them"
            )
    if profile.interleave:
        if not shutil.which("numactl"):
            raise UserError(
                f"profile {profile.name}: interleave = true needs numactl, which is missing "
                "(apt-get install -y numactl)"
            )
        # set_mempolicy needs CAP_SYS_NICE under a container's default seccomp profile.
        res = capture([*INTERLEAVE, "true"], check=False)
        if res.returncode != 0:
            raise UserError(
                f"profile {profile.name}: numactl --interleave=all is not permitted here "
                f"({res.stderr.strip() or 'numactl failed'})"
            )


def numa_note(profile: Profile, nodes: int) -> str | None:
    """What to tell the user when the profile's NUMA keys cannot change anything on this machine."""
    if nodes != 1:
        return None
    keys = ([f"numa={profile.numa}"] if profile.numa else []) + (["interleave"] if profile.interleave else [])
    if not keys:
        return None
    verb = "have" if len(keys) > 1 else "has"
    effect = f"{verb} no effect on this machine: it has one NUMA node"
    return f"profile {profile.name}: {' and '.join(keys)} {effect}"


@contextmanager
def competing_load(profile: Profile) -> Iterator[None]:
    """A CPU-bound process pinned to load_cpus for the duration (none if not set)."""
    if not profile.load_cpus:
        yield
        return
    with background(["taskset", "-c", profile.load_cpus, sys.executable, "-c", "while True: pass"]):
        yield
