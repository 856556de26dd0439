"""What the machine has: compilers and tools with versions, and how to get what is missing.

The same table answers a variant's `requires = [...]`: a build refuses to
start (exit 2) when a required tool is missing, and says how to install it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UserError
from ..run import capture
from ..tomlfile import suggest
from .tools import CMAKE_MIN_RELOCATABLE, cmake_binary, parse_version


@dataclass(frozen=True)
class Tool:
    name: str
    what: str
    programs: tuple[str, ...] = ()
    pkgconfig: str | None = None
    clang_runtime: str | None = None  # a library clang must find (OpenMP)
    header: str | None = None  # a C++ header the system compiler must find (#include <...>)
    locate: Callable[[], str] | None = None  # how the builder itself picks it
    install: str = ""
    required: bool = False
    min_version: tuple[int, ...] = ()


@dataclass(frozen=True)
class Finding:
    tool: Tool
    ok: bool
    version: str
    where: str
    problem: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.tool.name,
            "what": self.tool.what,
            "ok": self.ok,
            "required": self.tool.required,
            "version": self.version,
            "path": self.where,
            "problem": self.problem,
            "install": "" if self.ok else self.tool.install,
        }


TOOLS = (
    Tool("gcc", "C compiler (toolchain gcc)", ("gcc",), install="apt-get install -y gcc", required=True),
    Tool("g++", "C++ compiler (toolchain gcc)", ("g++",), install="apt-get install -y g++", required=True),
    Tool(
        "clang",
        "C/C++ compiler (toolchain clang)",
        ("clang-19", "clang"),
        install="apt-get install -y clang-19",
    ),
    Tool(
        "libomp",
        "clang's OpenMP runtime (OpenMP builds with clang)",
        clang_runtime="libomp.so",
        install="apt-get install -y libomp-19-dev",
    ),
    Tool(
        "cmake",
        "build system generator",
        ("cmake",),
        locate=lambda: cmake_binary()[0],
        install="pip install 'cmake>=3.27'  (a dependency of llama-variants)",
        required=True,
        min_version=CMAKE_MIN_RELOCATABLE,
    ),
    Tool(
        "ninja",
        "build tool",
        ("ninja", "ninja-build"),
        install="pip install ninja  (or apt-get install -y ninja-build)",
        required=True,
    ),
    Tool("ccache", "compiler cache shared by all variants", ("ccache",), install="apt-get install -y ccache"),
    Tool(
        "git", "mirrors, worktrees, patch series", ("git",), install="apt-get install -y git", required=True
    ),
    Tool("pkg-config", "finds optional libraries", ("pkg-config",), install="apt-get install -y pkg-config"),
    Tool(
        "liburing",
        "io_uring library (io-uring-loader series)",
        pkgconfig="liburing",
        install="apt-get install -y liburing-dev pkg-config",
    ),
    Tool(
        "uftrace",
        "function tracer (instrument = uftrace)",
        ("uftrace",),
        install="apt-get install -y uftrace",
    ),
    Tool("perf", "sampling profiler (instrument = perf)", ("perf",), install="apt-get install -y linux-perf"),
    Tool(
        "dmlc",
        "dmlc-core's headers (T-MAC's install, without a TVM checkout)",
        header="dmlc/logging.h",
        install="apt-get install -y libdmlc-dev",
    ),
    Tool("fio", "disk bandwidth reference (load bench)", ("fio",), install="apt-get install -y fio"),
    Tool(
        "numactl",
        "NUMA memory policy (profiles.toml interleave = true)",
        ("numactl",),
        install="apt-get install -y numactl",
    ),
    Tool(
        "libbpf-tools",
        "block I/O latency and off-CPU stacks (profile --tool bpf)",
        ("biolatency", "offcputime"),
        install="apt-get install -y libbpf-tools",
    ),
    Tool(
        "bpftrace",
        "the model's page-cache traffic (profile --tool bpf)",
        ("bpftrace",),
        install="apt-get install -y bpftrace",
    ),
    Tool(
        "clang-format",
        "formatting of the lines a patch adds (variant patch check)",
        ("clang-format-19",),
        install="apt-get install -y clang-format-19",
    ),
)
BY_NAME = {t.name: t for t in TOOLS}


def _first_line(argv: list[str]) -> str:
    res = capture(argv, check=False, timeout=20)
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0] if text else ""


def check(tool: Tool) -> Finding:
    if tool.pkgconfig:
        if not shutil.which("pkg-config"):
            return Finding(tool, False, "", "", "pkg-config is missing")
        res = capture(["pkg-config", "--modversion", tool.pkgconfig], check=False)
        if res.returncode != 0:
            return Finding(tool, False, "", "", "not found by pkg-config")
        libdir = capture(["pkg-config", "--variable=libdir", tool.pkgconfig], check=False).stdout.strip()
        return Finding(tool, True, res.stdout.strip(), libdir, "")
    if tool.header:
        cxx = shutil.which("c++") or shutil.which("g++")
        if cxx is None:
            return Finding(tool, False, "", "", "no C++ compiler to ask")
        res = capture([cxx, "-E", "-H", "-x", "c++", "-"], check=False, input=f"#include <{tool.header}>\n")
        if res.returncode != 0:
            return Finding(tool, False, "", "", f"<{tool.header}> not found")
        where = next((ln.split()[-1] for ln in res.stderr.splitlines() if ln.startswith(". ")), "")
        return Finding(tool, True, "", where, "")
    if tool.clang_runtime:
        clang = next((p for p in ("clang-19", "clang") if shutil.which(p)), None)
        if clang is None:
            return Finding(tool, False, "", "", "no clang to ask")
        path = capture([clang, f"-print-file-name={tool.clang_runtime}"], check=False).stdout.strip()
        if "/" not in path:
            return Finding(tool, False, "", "", f"{clang} cannot find {tool.clang_runtime}")
        return Finding(tool, True, "", path, "")
    programs = (tool.locate(),) if tool.locate else tool.programs
    for program in programs:
        found = shutil.which(program)
        if found:
            line = _first_line([found, "--version"])
            version = parse_version(line)
            if tool.min_version and version < tool.min_version:
                want = ".".join(map(str, tool.min_version))
                return Finding(tool, False, line, found, f"version {want} or newer needed")
            return Finding(tool, True, line, found, "")
    return Finding(tool, False, "", "", "not on PATH")


def report() -> list[Finding]:
    return [check(t) for t in TOOLS]


def require(names: tuple[str, ...], who: str) -> None:
    """Refuse to build when something the variant (or one of its series) requires is missing."""
    for name in names:
        tool = BY_NAME.get(name)
        if tool is None:
            raise UserError(f'{who} requires unknown tool "{name}"' + suggest(name, BY_NAME))
        finding = check(tool)
        if not finding.ok:
            raise UserError(
                f"{who} requires {name} ({tool.what}): {finding.problem}; install with: {tool.install}"
            )
