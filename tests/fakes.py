"""Small fake upstreams made in tmp folders, shaped like llama.cpp where the tool looks.

The fake project has a static `ggml` library with a GGML_OPENMP switch, four
programs named like llama.cpp's default targets, built into bin/, and a few
knobs the tests use to make it misbehave (link OpenMP regardless, run slowly).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Upstream Dev",
    "GIT_AUTHOR_EMAIL": "dev@upstream.example",
    "GIT_COMMITTER_NAME": "Upstream Dev",
    "GIT_COMMITTER_EMAIL": "dev@upstream.example",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}

CMAKELISTS = r"""
cmake_minimum_required(VERSION 3.14)
project(fake C CXX)
option(GGML_OPENMP "use OpenMP" ON)
option(FAKE_LINK_OPENMP_ANYWAY "misbehave: link OpenMP even when GGML_OPENMP is off" OFF)
option(FAKE_SLOW "add a slow build step" OFF)
option(FAKE_OPENMP_UNUSED "misbehave: link OpenMP for GGML_OPENMP but never call it" OFF)
option(FAKE_IDENT "misbehave: one object claims another compiler in .comment" OFF)
option(GGML_SANITIZE_THREAD "ThreadSanitizer, as ggml's option" OFF)
option(FAKE_IGNORE_SANITIZE "misbehave: ignore GGML_SANITIZE_THREAD" OFF)
option(FAKE_FORCE_DEBUG "misbehave: compile with -g whatever the build type" OFF)
option(FAKE_DROP_RELEASE_FLAGS "misbehave: compile without the build type's flags" OFF)
option(FAKE_OWN_WARNING "a warning of the project's own in ggml.c, as forks have" OFF)
option(FAKE_DEP "kernels from the fakedep dependency, found with find_package (as T-MAC's fork does)" OFF)
option(FAKE_DEP_SKIP_KERNEL "misbehave: say FAKE_DEP but leave its kernels out" OFF)
option(FAKE_RANDOM_ID "misbehave: a build id drawn at random at configure time (not reproducible)" OFF)
option(FAKE_DATE "a build date compiled in (__DATE__ __TIME__)" OFF)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
if (FAKE_DROP_RELEASE_FLAGS)
    set(CMAKE_C_FLAGS_RELEASE "")
endif()
if (GGML_SANITIZE_THREAD AND NOT FAKE_IGNORE_SANITIZE)
    add_compile_options(-fsanitize=thread)
    add_link_options(-fsanitize=thread)
endif()
if (FAKE_FORCE_DEBUG)
    add_compile_options(-g)
endif()
file(GLOB FAKE_EXTRA ggml/extra-*.c)
add_library(ggml STATIC ggml/ggml.c ${FAKE_EXTRA})
target_include_directories(ggml PUBLIC ggml)
if (FAKE_IDENT)
    target_compile_definitions(ggml PRIVATE FAKE_IDENT)
endif()
if (FAKE_OWN_WARNING)
    target_compile_definitions(ggml PRIVATE FAKE_OWN_WARNING)
endif()
if (FAKE_DEP AND NOT FAKE_DEP_SKIP_KERNEL)
    find_package(FakeDep REQUIRED)
    target_sources(ggml PRIVATE ${FAKEDEP_KERNELS})
    target_compile_definitions(ggml PRIVATE FAKE_KCFG_DEFAULT="${FAKEDEP_KCFG}")
endif()
if (FAKE_DATE)
    target_compile_definitions(ggml PRIVATE FAKE_DATE)
    target_sources(ggml PRIVATE ggml/date.c)
endif()
if (FAKE_RANDOM_ID)
    string(RANDOM LENGTH 24 FAKE_ID)
    target_compile_definitions(ggml PRIVATE FAKE_BUILD_ID="${FAKE_ID}")
endif()
if (DEFINED FAKE_GENERATED_KIND)
    target_compile_definitions(ggml PRIVATE FAKE_GENERATED_KIND=${FAKE_GENERATED_KIND})
endif()
if (GGML_OPENMP OR FAKE_LINK_OPENMP_ANYWAY)
    find_package(OpenMP REQUIRED)
    target_link_libraries(ggml PUBLIC OpenMP::OpenMP_C)
    if (NOT FAKE_OPENMP_UNUSED)
        target_compile_definitions(ggml PRIVATE GGML_USE_OPENMP)
    endif()
endif()
foreach(prog test-barrier test-backend-ops llama-bench llama-other)
    add_executable(${prog} tools/${prog}.c)
    target_link_libraries(${prog} ggml)
endforeach()
add_executable(llama-simple tools/llama-simple.cpp)
target_link_libraries(llama-simple ggml)
add_library(not-a-program STATIC ggml/ggml.c)
if (FAKE_SLOW)
    add_custom_target(slow-step COMMAND ${CMAKE_COMMAND} -E sleep 30)
    add_dependencies(test-barrier slow-step)
endif()
if (DEFINED FAKE_ECHO)
    file(WRITE ${CMAKE_BINARY_DIR}/echo.txt "${FAKE_ECHO}")
endif()
"""

GGML_C = r"""
#include "ggml.h"
#ifdef FAKE_IDENT
#ident "Foreign Compiler 9.9"
#endif
#ifdef FAKE_OWN_WARNING
#warning "the project's own"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* what the dependency's kernels and configuration file say, as T-MAC's fork reads kcfg.ini */
#ifdef FAKE_KCFG_DEFAULT
int fakedep_kernel(void);
const char * ggml_kcfg(void) {
    static char line[128];
    const char * path = getenv("FAKE_KCFG_FILE") ? getenv("FAKE_KCFG_FILE") : FAKE_KCFG_DEFAULT;
    FILE * f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        snprintf(line, sizeof line, "unreadable:%d", fakedep_kernel());
    }
    if (f) fclose(f);
    line[strcspn(line, "\n")] = 0;
    return line;
}
#else
const char * ggml_kcfg(void) { return "none"; }
#endif
#ifdef FAKE_GENERATED_KIND
int ggml_generated(void) { return FAKE_GENERATED_KIND; }
#else
int ggml_generated(void) { return -1; }
#endif
#ifdef GGML_USE_OPENMP
#include <omp.h>
#endif
int ggml_threads(void) {
#ifdef GGML_USE_OPENMP
    int n = 0;
    /* a parallel region, as ggml_graph_compute has: GOMP_parallel / __kmpc_fork_call */
    #pragma omp parallel
    {
        #pragma omp atomic
        n++;
    }
    return n > 0 ? omp_get_max_threads() : 0;
#else
    return 1;
#endif
}
int ggml_barrier_kind(void) { return 0; }
/* where this file was compiled, as ggml's asserts and logs say it (__FILE__) */
const char * ggml_file(void) { return __FILE__; }
#ifdef FAKE_BUILD_ID
const char * ggml_build_id(void) { return FAKE_BUILD_ID; }
#else
const char * ggml_build_id(void) { return ""; }
#endif
/* a build date, as some projects print, is in ggml/date.c: ccache serves no object whose source
   names the time macros, even under an #if */
#ifndef FAKE_DATE
const char * ggml_built(void) { return ""; }
#endif
/* a header found only through the caller's CPATH: a build environment that leaks */
#if __has_include(<variant_env_leak.h>)
int ggml_env_leak(void) { return 1; }
#else
int ggml_env_leak(void) { return 0; }
#endif
"""

PROGRAM_C = r"""
#include <stdio.h>
#include <string.h>
#include "ggml.h"
int main(int argc, char ** argv) {
    /* like ik_llama.cpp's programs: a log in the working directory */
    FILE * log = fopen("llama.log", "a");
    if (log) { fprintf(log, "%s ran\n", NAME); fclose(log); }
    /* like BitNet's llama-bench: -m is a list split at spaces and commas */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && strcspn(argv[i + 1], " ,") != strlen(argv[i + 1])) {
            fprintf(stderr, "failed to open '%.*s'\n", (int) strcspn(argv[i + 1], " ,"), argv[i + 1]);
            return 1;
        }
    }
    /* linked in, never printed */
    if (argc > 99) printf("%s %s %s\n", ggml_file(), ggml_build_id(), ggml_built());
    printf("%s ok kind=%d threads=%d leak=%d kcfg=%s generated=%d\n", NAME, ggml_barrier_kind(),
           ggml_threads() > 0, ggml_env_leak(), ggml_kcfg(), ggml_generated());
    /* what smoke and the barrier suite read from the real programs */
    if (strcmp(NAME, "test-barrier") == 0) printf("graph-compute: 1234.5 nsec per-node\n");
    if (strcmp(NAME, "llama-bench") == 0) printf("[\n  {\"n_gen\": 4, \"avg_ts\": 12.5}\n]\n");  /* -o json */
    return 0;
}
"""

# A translation unit of some weight, so that a build has enough compiles for cache ratios.
EXTRA_C = r"""
static double table_%(i)d[64];
double ggml_extra_%(i)d(int n) {
    double acc = 0;
    for (int k = 0; k < 64; k++) table_%(i)d[k] = k * %(i)d + 0.5;
    for (int k = 0; k < n; k++) acc += table_%(i)d[k %% 64] * (k + %(i)d);
    return acc;
}
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def write_tree(root: Path, extra_sources: int = 0) -> None:
    (root / "ggml").mkdir(parents=True, exist_ok=True)
    (root / "tools").mkdir(exist_ok=True)
    (root / "CMakeLists.txt").write_text(CMAKELISTS)
    (root / "ggml" / "ggml.h").write_text(
        "int ggml_threads(void);\nint ggml_barrier_kind(void);\nint ggml_env_leak(void);\n"
        "const char * ggml_kcfg(void);\nint ggml_generated(void);\n"
        "const char * ggml_file(void);\nconst char * ggml_build_id(void);\nconst char * ggml_built(void);\n"
    )
    (root / "ggml" / "ggml.c").write_text(GGML_C)
    (root / "ggml" / "date.c").write_text(
        'const char * ggml_built(void);\nconst char * ggml_built(void) { return __DATE__ " " __TIME__; }\n'
    )
    for prog in ("test-barrier", "test-backend-ops", "llama-bench", "llama-other"):
        (root / "tools" / f"{prog}.c").write_text(f'#define NAME "{prog}"\n' + PROGRAM_C)
    (root / "tools" / "llama-simple.cpp").write_text(
        '#include <cstdio>\nextern "C" {\n#include "ggml.h"\n}\n'
        'int main() { std::printf("llama-simple ok kind=%d\\n", ggml_barrier_kind()); return 0; }\n'
    )
    (root / ".gitignore").write_text("*.gguf\n")
    for i in range(extra_sources):
        (root / "ggml" / f"extra-{i:02d}.c").write_text(EXTRA_C % {"i": i})


def make_upstream(path: Path, extra_sources: int = 0) -> str:
    """A git repo holding the fake project (with extra ggml sources); returns the commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "master")
    write_tree(path, extra_sources)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "fake upstream")
    return git(path, "rev-parse", "HEAD")


def make_patch(
    upstream: Path,
    out_dir: Path,
    *,
    name: str,
    old: str,
    new: str,
    file: str = "ggml/ggml.c",
    author: str = "Kernel Hacker <hacker@example.org>",
) -> Path:
    """Commit one edit on a scratch branch of upstream, export it with format-patch, drop the branch."""
    base = git(upstream, "rev-parse", "HEAD")
    branch = "tmp-" + "".join(c if c.isalnum() else "-" for c in name)
    git(upstream, "checkout", "-q", "-b", branch)
    target = upstream / file
    text = target.read_text()
    assert old in text, f"{old!r} not in {file}"
    target.write_text(text.replace(old, new, 1))
    git(
        upstream,
        "commit",
        "-q",
        "-a",
        f"--author={author}",
        "-m",
        f"ggml: {name}\n\nMeasured: nothing, it is a test.",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    produced = git(
        upstream,
        "format-patch",
        "-q",
        "-1",
        "-o",
        str(out_dir),
        "--start-number",
        str(len(list(out_dir.glob("*.patch"))) + 1),
        "HEAD",
    )
    git(upstream, "checkout", "-q", base)
    git(upstream, "branch", "-q", "-D", branch)
    git(upstream, "checkout", "-q", "master")
    return Path(produced.splitlines()[-1] if produced else sorted(out_dir.glob("*.patch"))[-1])


def make_sdist(path: Path, top: str = "fake_pkg-1.0", subdir: str = "vendor/fake", other: str = "") -> Path:
    """An sdist-shaped tarball vendoring the fake tree under subdir, with a dangling gitlink.

    other: a line added to tools/llama-other.c, so each release vendors its own tree.
    """
    stage = path.parent / (path.name + ".stage")
    tree = stage / top / subdir
    write_tree(tree)
    if other:
        prog = tree / "tools" / "llama-other.c"
        prog.write_text(prog.read_text() + other + "\n")
    (tree / ".git").write_text("gitdir: ../../.git/modules/vendor/fake\n")
    (tree / "model.gguf").write_text("ignored by .gitignore, shipped by the sdist\n")
    name, version = top.rsplit("-", 1)
    (stage / top / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (stage / top / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n[tool.setuptools]\npackages = []\n'
    )
    with tarfile.open(path, "w:gz") as tar:
        tar.add(stage / top, arcname=top)
    return path


DEP_CMAKELISTS = r"""
cmake_minimum_required(VERSION 3.14)
project(fakedep C)
option(FAKEDEP_FAIL "misbehave: fail to configure" OFF)
if (FAKEDEP_FAIL)
    message(FATAL_ERROR "fakedep: told to fail")
endif()
include(GNUInstallDirs)
install(FILES kernels.c kcfg.ini DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES FakeDepConfig.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fakedep)
"""

DEP_CONFIG = r"""
get_filename_component(_fakedep_lib "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(FAKEDEP_KERNELS "${_fakedep_lib}/kernels.c")
set(FAKEDEP_KCFG "${_fakedep_lib}/kcfg.ini")
"""


def make_dep(path: Path) -> str:
    """A dependency in the shape of T-MAC: installs a CMake package, kernel sources and a kcfg.ini."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "CMakeLists.txt").write_text(DEP_CMAKELISTS)
    (path / "FakeDepConfig.cmake").write_text(DEP_CONFIG)
    (path / "kernels.c").write_text("int fakedep_kernel(void);\nint fakedep_kernel(void) { return 42; }\n")
    (path / "kcfg.ini").write_text("kcfg-from-the-dependency\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "fake dependency")
    return git(path, "rev-parse", "HEAD")


OUTER_CMAKELISTS = r"""
cmake_minimum_required(VERSION 3.14)
project(outer C CXX)
file(READ ${CMAKE_SOURCE_DIR}/include/kind.txt FAKE_GENERATED_KIND)
string(STRIP "${FAKE_GENERATED_KIND}" FAKE_GENERATED_KIND)
add_subdirectory(3rdparty/llama)
"""

GENERATOR = """import sys
from pathlib import Path
Path("include").mkdir(exist_ok=True)
Path("include/kind.txt").write_text(sys.argv[1] + "\\n")
"""


def make_outer(path: Path) -> str:
    """A project in the shape of BitNet: builds only with a llama.cpp fork nested at 3rdparty/llama,
    and a code generator that must run before configuring."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "CMakeLists.txt").write_text(OUTER_CMAKELISTS)
    (path / "gen.py").write_text(GENERATOR)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "fake outer project")
    return git(path, "rev-parse", "HEAD")


def make_line(path: Path, n: int, plants: dict[int, tuple[str, str, str]]) -> list[str]:
    """A fake upstream of n commits on master, oldest first; plants[k] = (file, old, new) edits commit k.

    Every other commit touches only a comment in llama-other, so most objects are cache hits.
    """
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "master")
    write_tree(path)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "line: commit 0")
    commits = [git(path, "rev-parse", "HEAD")]
    for k in range(1, n):
        other = path / "tools" / "llama-other.c"
        other.write_text(other.read_text() + f"/* commit {k} */\n")
        if k in plants:
            file, old, new = plants[k]
            text = (path / file).read_text()
            assert old in text, f"{old!r} not in {file}"
            (path / file).write_text(text.replace(old, new))
        git(path, "commit", "-q", "-a", "-m", f"line: commit {k}")
        commits.append(git(path, "rev-parse", "HEAD"))
    return commits
