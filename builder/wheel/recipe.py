"""What a variant's wheel is built from and with: the sdist, the CMake arguments, the version label.

llama-cpp-python's wheel is a CMake project (its CMakeLists.txt) that adds the
vendored llama.cpp with add_subdirectory and installs the shared libraries into
the package. The variant's options, compilers, flags and build type are given
to scikit-build-core through CMAKE_ARGS (what llama-cpp-python documents for
its users) and its `cmake.build-type` setting; what llama-cpp-python decides
itself is read back after the build and reported, not overridden.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import redact
from ..errors import UserError
from ..layout import Layout
from ..plan.plan import Plan
from ..source.sources import Pin, Source

# The sdist whose vendored llama.cpp a wheel replaces: the project, and where its tree sits.
PROJECT = "llama-cpp-python"
VENDOR = "vendor/llama.cpp"
# Options that choose which programs a build makes: a wheel ships libraries only, so they are
# off whatever the variant says (its tests and tools are built by `variant build`).
PROGRAMS = ("LLAMA_BUILD_TESTS", "LLAMA_BUILD_EXAMPLES", "LLAMA_BUILD_TOOLS", "LLAMA_BUILD_SERVER")
MANIFEST = "variant-manifest.json"  # inside the llama_cpp package of the wheel
NO_MTMD = ".nomtmd"  # the label's suffix for a wheel without the multimodal library


def label(variant: str, plan_hash: str, *, mtmd: bool = True) -> str:
    """A variant's wheel's local version label (PEP 440: [a-z0-9] and dots): name and hash."""
    name = re.sub(r"[^a-z0-9]+", ".", variant.lower()).strip(".")
    return f"{name}.{plan_hash[:12]}" + ("" if mtmd else NO_MTMD)


@dataclass(frozen=True)
class Recipe:
    plan: Plan  # the variant's plan, re-aimed at the wheel's build folder and cache log
    pin: Pin  # the llama-cpp-python sdist
    sdist_version: str
    work: Path  # work/NAME.wheel: the staged sdist and scikit-build-core's build folder
    mtmd: bool = True  # llama-cpp-python's multimodal library (LLAVA_BUILD): 51 of 178 compiles

    @property
    def label(self) -> str:
        """The local version label: the variant's name and its hash (PEP 440: [a-z0-9] and dots)."""
        return label(self.plan.name, self.plan.hash, mtmd=self.mtmd)

    @property
    def version(self) -> str:
        return f"{self.sdist_version}+{self.label}"

    @property
    def staged(self) -> Path:
        return self.work / "sdist"

    @property
    def build_dir(self) -> Path:
        return self.work / "build"

    def cmake_args(self) -> list[str]:
        """CMAKE_ARGS: the variant's -D arguments with the program switches (and maybe mtmd) off."""
        off = [f"-D{k}=OFF" for k in PROGRAMS] + ([] if self.mtmd else ["-DLLAVA_BUILD=OFF"])
        mine = [a for a in self.plan.cmake_defines() if not a.startswith(tuple(f"-D{k}=" for k in PROGRAMS))]
        return mine + off

    def settings(self) -> list[str]:
        """scikit-build-core's config settings, as pip's -C arguments."""
        return [
            f"cmake.build-type={self.plan.variant.build_type}",
            # A kept build folder: the next wheel of this variant recompiles only what changed.
            f"build-dir={self.build_dir}",
            "build.verbose=true",
        ]

    def manifest(self) -> dict[str, Any]:
        """What the wheel carries about itself: source, patches, options, compiler."""
        d = self.plan.describe()
        keep = ("variant", "description", "hash", "source", "toolchain", "patches", "cmake", "flags",
                "build_type", "instrument", "isa")  # fmt: skip
        return {
            **{k: d[k] for k in keep},
            "wheel": {
                "version": self.version,
                "sdist": self.pin.describe(),
                "vendor": VENDOR,
                # As recorded everywhere: a password in any of them hidden (the wheel is shared).
                "cmake_args": redact.argv(self.cmake_args()),
                "settings": self.settings(),
                "programs_off": list(PROGRAMS),
                "mtmd": self.mtmd,
            },
        }


def wheel_source(sources: dict[str, Source]) -> Source | None:
    """The catalogue's source whose offline pin is the llama-cpp-python sdist that vendors it."""
    for src in sources.values():
        pin = src.pypi
        if pin is not None and _project(pin) == PROJECT and pin.subdir == VENDOR:
            return src
    return None


def _project(pin: Pin) -> str:
    return re.sub(r"[-_.]+", "-", pin.name.split("==", 1)[0].strip().lower())


def check_source(plan: Plan, sources: dict[str, Source]) -> Pin:
    """The sdist pin, or a UserError naming the pin the variant would need."""
    src = plan.source
    want = wheel_source(sources)
    if want is None:
        raise UserError(
            f'{plan.name}: no source in the catalogue is pinned to a {PROJECT} sdist (a "pypi" pin with '
            f'subdir = "{VENDOR}"): a wheel is built from that sdist'
        )
    assert want.pypi is not None
    need = f'source "{want.name}" ({want.url} @ {want.commit[:9]})'
    if src.name != want.name:
        raise UserError(
            f'{plan.name}: its source "{src.name}" ({src.url} @ {src.commit[:9]}) is not the llama.cpp '
            f"that {want.pypi.name} vendors; a wheel needs {need}"
        )
    if len(plan.trees) > 1 or plan.deps:
        raise UserError(
            f"{plan.name}: builds nested trees or dependencies, which {want.pypi.name} cannot carry; "
            f"a wheel needs {need} alone"
        )
    return want.pypi


def make(layout: Layout, plan: Plan, pin: Pin, *, mtmd: bool = True) -> Recipe:
    work = layout.work_root / f"{plan.name}.wheel"
    # The wheel's compiles are logged apart from the variant's binaries' (their hits and misses).
    stats = str(work / "ccache-stats.log")
    ccache_env = tuple((k, stats if k == "CCACHE_STATSLOG" else v) for k, v in plan.ccache_env)
    plan = dataclasses.replace(plan, ccache_env=ccache_env, build_dir=work / "build")
    return Recipe(plan, pin, pin.name.split("==", 1)[1].strip(), work, mtmd)
