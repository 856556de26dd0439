"""Bad input: a clear message naming file and key, exit code 2, nothing in dist/."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Catalogue, Outcome, write_sources
from .fakes import make_patch

Run = Callable[..., Outcome]


def _fails(cat: Catalogue, run: Run, *args: str) -> Outcome:
    res = run(cat.root, *args)
    assert res.code == 2, (res.code, res.out, res.err)
    assert not cat.dist.exists(), "a failed spec must not write to dist/"
    return res


def test_malformed_toml_names_the_line(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("bad", 'description = "x"\ntoolchain = gcc\n')
    res = _fails(catalogue, run, "build", "bad")
    assert "bad.toml" in res.err and "invalid TOML" in res.err and "line 2" in res.err


def test_unknown_key_suggests_the_close_one(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("typo", 'toolchian = "gcc"\n')
    res = _fails(catalogue, run, "build", "typo")
    assert "typo.toml: toolchian" in res.err
    assert 'did you mean "toolchain"' in res.err


def test_unknown_flags_key_names_the_path(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("typo", '[flags]\ncxxx = ["-O1"]\n')
    res = _fails(catalogue, run, "show", "typo")
    assert "flags.cxxx" in res.err and 'did you mean "cxx"' in res.err


def test_wrong_value_type(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("wrong", 'targets = "test-barrier"\n')
    res = _fails(catalogue, run, "build", "wrong")
    assert "wrong.toml: targets: expected an array of strings, got a string" in res.err


def test_wrong_cmake_value_type(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("wrong", "[cmake]\nGGML_OPENMP = [1, 2]\n")
    res = _fails(catalogue, run, "build", "wrong")
    assert "cmake.GGML_OPENMP" in res.err and "expected a boolean, integer or string" in res.err


def test_bad_enum_value(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("wrong", 'build-type = "Relase"\n')
    res = _fails(catalogue, run, "build", "wrong")
    assert "build-type" in res.err and 'did you mean "Release"' in res.err


def test_unknown_toolchain(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("_mix", 'toolchain = "clnag"\n')
    catalogue.variant("v", 'extends = ["_mix"]\n')
    res = _fails(catalogue, run, "build", "v")
    # Reported against the mixin that named it, not the variant.
    assert "_mix.toml: toolchain" in res.err and 'unknown toolchain "clnag"' in res.err
    assert 'did you mean "clang"' in res.err


def test_unknown_source(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", 'source = "bitnet"\n')
    res = _fails(catalogue, run, "build", "v")
    assert 'v.toml: source: unknown source "bitnet"' in res.err


def test_unknown_series(catalogue: Catalogue, run: Run) -> None:
    catalogue.series("futex-yield-barrier")
    catalogue.variant("v", 'patches = ["futex-yeild-barrier"]\n')
    res = _fails(catalogue, run, "build", "v")
    assert "v.toml: patches[0]" in res.err and 'did you mean "futex-yield-barrier"' in res.err


def test_unknown_mixin(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("_openmp-off", "[cmake]\nGGML_OPENMP = false\n")
    catalogue.variant("v", 'extends = ["_openmp-of"]\n')
    res = _fails(catalogue, run, "build", "v")
    assert "v.toml: extends[0]" in res.err and 'did you mean "_openmp-off"' in res.err


def test_extends_cycle(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("_a", 'extends = ["_b"]\n')
    catalogue.variant("_b", 'extends = ["_a"]\n')
    catalogue.variant("v", 'extends = ["_a"]\n')
    res = _fails(catalogue, run, "build", "v")
    assert "extends cycle: v -> _a -> _b -> _a" in res.err


def test_mixin_is_not_buildable(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("_a", "")
    res = _fails(catalogue, run, "build", "_a")
    assert "mixin" in res.err


def test_unknown_variant(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("upstream-gcc", "")
    res = _fails(catalogue, run, "build", "upstream-gc")
    assert 'unknown variant "upstream-gc"' in res.err and 'did you mean "upstream-gcc"' in res.err


def test_short_commit_pin(catalogue: Catalogue, run: Run) -> None:
    write_sources(catalogue.root, str(catalogue.upstream.path), catalogue.upstream.commit[:9])
    catalogue.variant("v", "")
    res = _fails(catalogue, run, "build", "v")
    assert "sources.toml: llama.cpp.commit: expected a full 40-character lowercase hex commit" in res.err


def test_non_hex_commit_pin(catalogue: Catalogue, run: Run) -> None:
    write_sources(catalogue.root, str(catalogue.upstream.path), "g" * 40)
    catalogue.variant("v", "")
    res = _fails(catalogue, run, "build", "v")
    assert "llama.cpp.commit" in res.err and "hex" in res.err


def test_pypi_pin_needs_sha256(catalogue: Catalogue, run: Run) -> None:
    write_sources(
        catalogue.root,
        str(catalogue.upstream.path),
        catalogue.upstream.commit,
        'pypi = "fake-pkg==1.0"\nsubdir = "vendor/fake"\nsha256 = "abc"\n',
    )
    catalogue.variant("v", "")
    res = _fails(catalogue, run, "build", "v")
    assert "llama.cpp.sha256" in res.err and "64-hex" in res.err


def test_patch_changed_since_pinned(catalogue: Catalogue, run: Run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sdir = catalogue.series("s")
    make_patch(catalogue.upstream.path, sdir, name="kind one", old="return 0; }", new="return 1; }")
    assert run(catalogue.root, "patch", "pin", "s").code == 0
    patch = next(sdir.glob("*.patch"))
    patch.write_text(patch.read_text().replace("kind one", "kind uno"))
    catalogue.variant("v", 'patches = ["s"]\n')
    res = _fails(catalogue, run, "build", "v")
    assert f"series.toml: sha256.{patch.name}: the patch changed since it was pinned" in res.err


def test_missing_compiler_points_to_doctor(catalogue: Catalogue, run: Run) -> None:
    (catalogue.root / "toolchains" / "icx.toml").write_text(
        'family = "clang"\ncc = ["no-such-icx"]\ncxx = ["no-such-icpx"]\ninstall = "get oneAPI"\n'
    )
    catalogue.variant("v", 'toolchain = "icx"\n')
    res = _fails(catalogue, run, "build", "v")
    assert "toolchain icx: no C compiler found (tried no-such-icx)" in res.err
    assert "variant doctor" in res.err and "get oneAPI" in res.err


def test_compiler_too_old(catalogue: Catalogue, run: Run) -> None:
    (catalogue.root / "toolchains" / "future.toml").write_text(
        'family = "gcc"\ncc = ["gcc"]\ncxx = ["g++"]\nmin-version = "99"\n'
    )
    catalogue.variant("v", 'toolchain = "future"\n')
    res = _fails(catalogue, run, "build", "v")
    assert "at least 99 is required" in res.err


def test_reserved_cmake_option(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", '[cmake]\nCMAKE_C_COMPILER = "tcc"\n')
    res = _fails(catalogue, run, "build", "v")
    assert "cmake.CMAKE_C_COMPILER: set by the tool; use toolchain instead" in res.err


def test_unknown_requirement(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("v", 'requires = ["liburnig"]\n')
    res = _fails(catalogue, run, "build", "v")
    assert 'requires[0]: unknown tool "liburnig"' in res.err and 'did you mean "liburing"' in res.err


def test_list_reports_invalid_specs_and_exits_2(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("good", "")
    catalogue.variant("bad", "toolchain = 3\n")
    res = run(catalogue.root, "list", "--json")
    assert res.code == 2
    import json

    rows = {r["name"]: r for r in json.loads(res.out)}
    assert rows["good"]["status"] == "not built"
    assert rows["bad"]["status"] == "invalid" and "expected a string" in rows["bad"]["description"]


def test_no_catalogue(tmp_path, run: Run) -> None:  # type: ignore[no-untyped-def]
    res = run(tmp_path, "list")
    assert res.code == 2 and "not a catalogue" in res.err


def test_flags_that_define_an_option_macro_are_refused(catalogue: Catalogue, run: Run) -> None:
    # The seeds' own mistake: -DGGML_USE_OPENMP=0 *defines* the macro an #ifdef tests.
    catalogue.variant("fight", '[flags]\nc = ["-O2", "-DGGML_USE_OPENMP=0"]\n')
    res = _fails(catalogue, run, "build", "fight")
    assert "fight.toml: flags.c[1]" in res.err and "set [cmake] GGML_OPENMP instead" in res.err
    # -U in its two-argument form, in a mixin: reported against the mixin's file
    catalogue.variant("_undef", '[flags]\ncxx = ["-U", "LLAMA_USE_CURL"]\n')
    catalogue.variant("fight2", 'extends = ["_undef"]\n')
    res = _fails(catalogue, run, "show", "fight2")
    assert "_undef.toml: flags.cxx[0]" in res.err and "undefines LLAMA_USE_CURL" in res.err
    catalogue.variant("fight3", '[flags]\nc = ["-Wp,-UGGML_USE_OPENMP"]\n')
    res = _fails(catalogue, run, "show", "fight3")
    assert "flags.c[0]" in res.err and "set [cmake] GGML_OPENMP instead" in res.err
    # macros that no option owns stay the user's business
    catalogue.variant("fine", '[flags]\nc = ["-DMY_EXPERIMENT=1", "-UNDEBUG"]\n')
    assert run(catalogue.root, "show", "fine").code == 0


@pytest.mark.parametrize(
    ("flag", "macro"),
    [
        ("-DGGML_USE_OPENMP\\n", "GGML_USE_OPENMP"),  # a trailing newline (fullmatch alone would pass it)
        ("-D GGML_USE_OPENMP", "GGML_USE_OPENMP"),  # gcc skips the space and defines it
        ("-DGGML_USE_OPENMP(x)=1", "GGML_USE_OPENMP"),  # a function-like macro: #ifdef sees it
        ("-U\\tLLAMA_USE_CURL", "LLAMA_USE_CURL"),
    ],
)
def test_an_option_macro_is_refused_in_every_spelling_the_preprocessor_reads_as_it(
    catalogue: Catalogue, run: Run, flag: str, macro: str
) -> None:
    catalogue.variant("fight", f'[flags]\nc = ["{flag}"]\n')
    res = _fails(catalogue, run, "show", "fight")
    assert "flags.c[0]" in res.err and f" {macro}, which the CMake option " in res.err, res.err


@pytest.mark.parametrize("flag", ["-DMY_GGML_X", "-DGGMLX_Y\\n", "-D MYGGML_X(x)", "-DGGML"])
def test_a_macro_no_option_owns_is_left_alone_whatever_follows_its_name(
    catalogue: Catalogue, run: Run, flag: str
) -> None:
    catalogue.variant("fine", f'[flags]\nc = ["{flag}"]\n')
    res = run(catalogue.root, "show", "fine")
    assert res.code == 0, res.err


def test_variant_names_outside_the_allowed_characters(catalogue: Catalogue, run: Run) -> None:
    catalogue.variant("unicodé-name", 'description = "x"\n')
    res = _fails(catalogue, run, "show", "unicodé-name")
    assert 'invalid variant name "unicodé-name"' in res.err and "did you mean" not in res.err
    listed = run(catalogue.root, "list")
    assert listed.code == 2 and "unicodé-name" in listed.out and "invalid variant name" in listed.out


def test_names_keys_and_targets_with_a_trailing_newline_are_refused(catalogue: Catalogue, run: Run) -> None:
    # re.match's "$" also matches before a final newline: every such check is a fullmatch.
    catalogue.variant("t", 'targets = ["llama-simple\\n"]\n')
    res = _fails(catalogue, run, "show", "t")
    assert "t.toml: targets[0]" in res.err and "is not a CMake target name" in res.err
    catalogue.variant("k", '[cmake]\n"GGML_OPENMP\\n" = false\n')
    res = _fails(catalogue, run, "show", "k")
    assert "k.toml: cmake.GGML_OPENMP" in res.err and "not a valid CMake variable name" in res.err
    catalogue.variant("v", "")
    assert run(catalogue.root, "show", "v").code == 0
    # a source's name follows the variant-name rule (it reaches paths, branches, CI job names)
    up = catalogue.upstream
    write_sources(
        catalogue.root, str(up.path), up.commit, f'["llama.cpp\\n"]\nurl = "x"\ncommit = "{up.commit}"\n'
    )
    res = _fails(catalogue, run, "show", "v")
    assert 'sources.toml: "llama.cpp\\n": invalid source name "llama.cpp\\n": names are made of' in res.err
    write_sources(catalogue.root, str(up.path), up.commit, f'["l$(id)"]\nurl = "x"\ncommit = "{up.commit}"\n')
    res = _fails(catalogue, run, "show", "v")
    assert 'sources.toml: l$(id): invalid source name "l$(id)"' in res.err
    # a pull request's URL
    series = catalogue.series("s") / "series.toml"
    before = series.read_text()
    res = run(catalogue.root, "patch", "status", "s", "--pr", "https://github.com/o/r/pull/1\n")
    assert res.code == 2 and "--pr" in res.err and "expected the pull request's URL" in res.err
    assert series.read_text() == before
