"""Reproducible builds of the fake upstream: the same variant gives the same bytes at any path,
from any cache, and `variant build --check` proves it (or names where it does not)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.digest import sha256_file
from builder.plan import repro
from builder.verify import elfdiff

from .conftest import Catalogue, Outcome, write_sources
from .fakes import git

Run = Callable[..., Outcome]
SPEC = 'toolchain = "gcc"\ntargets = ["test-barrier", "llama-bench"]\n[cmake]\nGGML_OPENMP = false\n'


def _other_catalogue(cat: Catalogue, where: Path) -> Catalogue:
    """The same catalogue files at another path, with a state folder (and compile cache) of its own."""
    for name in ("variants", "patches", "toolchains"):
        shutil.copytree(cat.root / name, where / name)
    write_sources(where, str(cat.upstream.path), cat.upstream.commit)
    return Catalogue(where, cat.upstream)


def _bins(cat: Catalogue, name: str) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted((cat.dist / name / "bin").iterdir())}


def _manifest(cat: Catalogue, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cat.dist / name / "manifest.json").read_text())
    return data


def test_two_catalogues_at_two_paths_with_empty_caches_build_the_same_bytes(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    catalogue.variant("plain", SPEC + "FAKE_DATE = true\n")
    other = _other_catalogue(catalogue, tmp_path / "a folder" / "čaj ü")
    for cat in (catalogue, other):
        assert run(cat.root, "build", "plain").code == 0
    assert _bins(catalogue, "plain") == _bins(other, "plain")
    assert _manifest(catalogue, "plain")["reproducible"] == "unchecked"
    for cat in (catalogue, other):
        data = (cat.dist / "plain" / "bin" / "test-barrier").read_bytes()
        # __FILE__ is there, under the prefix map's name, and neither catalogue's path is;
        # __DATE__ and __TIME__ are the source commit's (SOURCE_DATE_EPOCH), not today's
        assert b"variant/src/ggml/ggml.c" in data and b"Jan  1 2026 00:00:00" in data
        assert str(tmp_path).encode() not in data and b"/.variant/work/" not in data


def test_a_sibling_built_from_the_cache_embeds_nothing_of_its_siblings_tree(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("plain", SPEC)
    catalogue.variant("twin", SPEC)  # the same build under another name: every object a cache hit
    assert run(catalogue.root, "build", "plain").code == 0
    assert run(catalogue.root, "build", "twin").code == 0
    m = _manifest(catalogue, "twin")
    assert m["ccache"]["misses"] == 0 and m["ccache"]["hits"] > 0
    data = (catalogue.dist / "twin" / "bin" / "test-barrier").read_bytes()
    assert b"/work/plain/" not in data and b"/work/twin/" not in data
    assert _bins(catalogue, "plain") == _bins(catalogue, "twin")


def test_check_passes_for_a_reproducible_build_and_names_the_file_and_section_that_is_not(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("plain", SPEC)
    res = run(catalogue.root, "build", "plain", "--check")
    assert res.code == 0, res.err
    assert "plain: reproducible: all 2 published files identical" in res.err
    assert _manifest(catalogue, "plain")["reproducible"].startswith("checked 20")
    # from the catalogue's own caches: a cached object is the bytes a fresh compile gives
    res = run(catalogue.root, "build", "plain", "--check=cache", "--json")
    assert res.code == 0, res.err
    (checked,) = json.loads(res.out)
    assert checked["reproducible"] and checked["rebuild_ccache"]["misses"] == 0
    # one verdict, said alike to the script and written into the manifest
    assert checked["verdict"] == _manifest(catalogue, "plain")["reproducible"]
    assert checked["verdict"].endswith("(from the caches)")

    # A build id drawn at random by CMake: every build differs, in the string it compiles in.
    catalogue.variant("noisy", SPEC + "FAKE_RANDOM_ID = true\n")
    res = run(catalogue.root, "build", "noisy", "--check")
    assert res.code == 1, res.err
    assert "noisy: NOT reproducible: 2 of 2 files differ" in res.err
    # the id is a string constant: .rodata differs, first or after .text (the compiler may build the
    # string's bytes as immediates in code: a run of the fast suite saw .text first)
    line = next(ln for ln in res.err.splitlines() if "bin/test-barrier: first difference in section" in ln)
    assert ".rodata" in line, line
    assert _manifest(catalogue, "noisy")["reproducible"] == "differs: bin/llama-bench, bin/test-barrier"
    kept = catalogue.home / "check" / "noisy" / "bin" / "test-barrier"
    assert kept.is_file() and sha256_file(kept) != _bins(catalogue, "noisy")["test-barrier"]
    # nothing of the scratch catalogue is left behind
    assert not [p for p in catalogue.home.iterdir() if p.name.startswith(".check-")]


def test_a_bad_check_mode_is_a_usage_error(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("plain", SPEC)
    res = run(catalogue.root, "build", "plain", "--check=maybe")
    assert res.code == 2 and "'maybe' is not one of 'empty', 'cache'" in res.err
    assert not catalogue.dist.exists()


def test_prefix_maps_name_the_variant_folder_and_each_dependency() -> None:
    maps = repro.prefix_maps(Path("/x y/.variant/work/v"), [("t-mac", Path("/x y/.variant/deps/t-mac-1"))])
    assert maps == (
        "-ffile-prefix-map=/x y/.variant/work/v=variant",
        "-ffile-prefix-map=/x y/.variant/deps/t-mac-1=deps/t-mac",
    )


def test_source_date_epoch_is_the_commit_time(catalogue: Catalogue) -> None:
    # the fake upstream is committed at 2026-01-01T00:00:00Z
    assert repro.source_date_epoch(catalogue.upstream.path, catalogue.upstream.commit) == "1767225600"
    assert git(catalogue.upstream.path, "show", "-s", "--format=%ct", "HEAD") == "1767225600"


def test_the_first_differing_section_is_named_and_a_non_elf_file_by_its_byte(tmp_path: Path) -> None:
    def compile_one(name: str, text: str) -> Path:
        src = tmp_path / f"{name}.c"
        src.write_text(f'const char * s(void) {{ return "{text}"; }}\nint main(void) {{ return 0; }}\n')
        subprocess.run(["gcc", "-O2", "-o", str(tmp_path / name), str(src)], check=True)
        return tmp_path / name

    a, b = compile_one("a", "hello"), compile_one("b", "world")
    assert elfdiff.first_difference(a, a) == "identical"
    # .rodata holds the string; the build-id differs too but names nothing; the symbol table
    # names the two source files (a.c, b.c)
    found = elfdiff.first_difference(a, b)
    assert re.fullmatch(r"section \.rodata, from byte \d+ of it \(\d+ bytes\); 1 more: \.strtab", found), (
        found
    )
    (tmp_path / "x.txt").write_text("abcdef")
    (tmp_path / "y.txt").write_text("abcxef")
    found = elfdiff.first_difference(tmp_path / "x.txt", tmp_path / "y.txt")
    assert found == "byte 3 (6 vs 6 bytes; not an ELF file)"


def test_a_typed_cmake_key_reaches_cmake_with_its_type_and_is_checked_by_its_name(
    catalogue: Catalogue, run: Run
) -> None:
    """T-MAC's kcfg default is set as "tuned_kcfg:STRING": untyped, CMake would make it absolute."""
    catalogue.variant("typed", SPEC + '"FAKE_ECHO:STRING" = "kcfg.ini"\n')
    res = run(catalogue.root, "build", "typed")
    assert res.code == 0, res.err
    build = catalogue.home / "work" / "typed" / "build"
    assert (build / "echo.txt").read_text() == "kcfg.ini"
    assert "FAKE_ECHO:STRING=kcfg.ini" in (build / "CMakeCache.txt").read_text().splitlines()
    catalogue.variant("badtype", SPEC + '"FAKE_ECHO:WEIRD" = "x"\n')
    res = run(catalogue.root, "show", "badtype")
    assert (
        res.code == 2 and "cmake.FAKE_ECHO:WEIRD" in res.err and "not a valid CMake variable name" in res.err
    )
    # one variable, one value: typed and untyped together are refused, and a type is no way around
    # the options the tool owns
    catalogue.variant("twice", SPEC + 'FAKE_ECHO = "a"\n"FAKE_ECHO:STRING" = "b"\n')
    res = run(catalogue.root, "show", "twice")
    assert res.code == 2 and "cmake.FAKE_ECHO sets the same variable" in res.err
    catalogue.variant("owned", SPEC + '"CMAKE_PROJECT_INCLUDE:FILEPATH" = "/x.cmake"\n')
    res = run(catalogue.root, "show", "owned")
    assert res.code == 2 and "set by the tool" in res.err
    # a typed key replaces the recipe's untyped one (BUILD_SHARED_LIBS): one -D, and the check holds
    catalogue.variant("shared", SPEC + '"BUILD_SHARED_LIBS:BOOL" = false\n')
    res = run(catalogue.root, "build", "shared", "--json")
    assert res.code == 0, res.err
    configure = json.loads(res.out)[0]["commands"]["configure"]
    assert [a for a in configure if a.startswith("-DBUILD_SHARED_LIBS")] == ["-DBUILD_SHARED_LIBS:BOOL=OFF"]
