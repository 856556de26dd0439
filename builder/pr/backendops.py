"""test-backend-ops in test mode on the patched build, for a series that changes ggml.

llama.cpp's CONTRIBUTING.md asks a change to the ggml sources to be checked with
test-backend-ops. In the pinned version its test mode, given `-b CPU`, runs each
case on the CPU backend and on the CPU backend switched to its reference
implementation (`ggml_backend_cpu_set_use_ref`) and compares the two; without
`-b` it skips the CPU backend, which on a machine with no accelerator leaves
nothing to test. The counts come from its closing lines ("N/M tests passed",
"Failing tests:"); a run that prints no count has not passed, whatever its exit code.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..layout import Layout
from ..models.installed import Installed, held
from ..run import measure

PROGRAM = "test-backend-ops"
# The ops a dense transformer's forward pass runs on the CPU: the matrix products, the element-wise
# ops and activations, the norm, attention's softmax and rope, the KV cache's rows and copies, each
# with all of its cases (every type and shape upstream tests). On the project's 2-core machine the
# list ran its 3786 cases in 100 s with -j 2 (2.2 GB resident); left out as too slow for an export:
# FLASH_ATTN_EXT (over 4000 cases, unfinished after 226 s) and MUL_MAT_ID (MoE only, 564 s alone).
OPS = ("MUL_MAT", "ADD", "MUL", "SCALE", "RMS_NORM", "SOFT_MAX", "ROPE", "GET_ROWS", "SET_ROWS", "CPY",
       "CONT", "SILU", "SWIGLU")  # fmt: skip
JOBS = 2  # test-backend-ops' parallel workers, one per core of the machine the list was timed on
TIMEOUT_S = 1800.0  # 18 times the list's time here: a hang, not a slower machine
ARGS = ("test", "-b", "CPU", "-o", ",".join(OPS), "-j", str(JOBS))
COMMAND = shlex.join([f"./build/bin/{PROGRAM}", *ARGS])  # as a reviewer runs it in upstream's build
PASSED = re.compile(r"^\s*(\d+)/(\d+) tests passed\s*$", re.M)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    variant: str
    ran: bool  # False: the variant has no test-backend-ops
    ok: bool
    passed: int
    total: int
    failing: tuple[str, ...]  # the cases test-backend-ops names as failed
    detail: str  # the exit code and time, or why it did not run or pass
    tail: str = ""  # the output's end, when it failed without naming its failures


def needed(paths: Sequence[str]) -> bool:
    """Whether a series changes ggml: any file under ggml/ (the library test-backend-ops tests)."""
    return any(p.startswith("ggml/") for p in paths)


def counts(stdout: str) -> tuple[int, int, tuple[str, ...]]:
    """Tests passed and run, summed over the backends tested, and the failing cases named."""
    found = [(int(a), int(b)) for a, b in PASSED.findall(stdout)]
    _, _, rest = stdout.partition("\nFailing tests:\n")
    failing = []
    for line in rest.splitlines():
        if not line.startswith("  "):
            break
        failing.append(line.strip())
    return sum(a for a, _ in found), sum(b for _, b in found), tuple(failing)


def run(layout: Layout, variant: str, say: Say) -> Outcome:
    """The installed variant's test-backend-ops (check), the build held while it runs."""
    with held(layout, variant) as inst:
        return check(inst, say)


def check(inst: Installed, say: Say) -> Outcome:
    """test-backend-ops in test mode on OPS; a failure is an Outcome, never an exception."""
    path = inst.bin / PROGRAM
    if not path.is_file():
        why = f"{inst.name} has no {PROGRAM} (add it to the variant's targets and rebuild)"
        return Outcome(inst.name, False, False, 0, 0, (), why)
    say(f"{PROGRAM}: {inst.name}, test mode on {len(OPS)} ops (a few minutes)")
    m = measure([path, *ARGS], env=inst.runtime_env(), timeout=TIMEOUT_S)
    passed, total, failing = counts(m.stdout)
    if m.returncode is None:
        detail = f"timed out after {TIMEOUT_S:g} s"
    elif m.returncode != 0:
        detail = f"exit code {m.returncode} after {m.wall_s:.0f} s"
    elif not total:
        detail = f"exit code 0 after {m.wall_s:.0f} s, but no 'N/M tests passed' line: no test ran"
    else:
        detail = f"exit code 0 in {m.wall_s:.0f} s"
    ok = m.returncode == 0 and total > 0 and passed == total and not failing
    return Outcome(inst.name, True, ok, passed, total, failing, detail, "" if ok or failing else m.tail())
