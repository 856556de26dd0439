"""Hostile and damaged input: pinned archives that try to get out, sdists whose code must not run
before their pin is checked, a folder a person put at dist/NAME, what a killed run leaves behind.

Every archive here is made in the test and pinned with its real sha256: the pin check passes and
what is tested is what comes after it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder import git as gitmod
from builder import tempdirs
from builder import unpack as unpacking
from builder.errors import UserError
from builder.layout import Layout
from builder.wheel import make as wheel_make
from builder.wheel import stage

from .conftest import REPO, Catalogue, Outcome, write_sources
from .fakes import write_tree

Run = Callable[..., Outcome]
UNREACHABLE = "https://git.invalid/hostile/llama.cpp"
TOP = "fake-fork-1234567"
TGZ = f"{TOP}.tar.gz"
ZIP = f"{TOP}.zip"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(where: Path) -> dict[str, bytes]:
    """The fake upstream's files, as an archive's members would hold them."""
    write_tree(where)
    return {str(p.relative_to(where)): p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()}


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, 0o644
    return info


def _write_tar(path: Path, files: dict[str, bytes], extra: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A tar.gz of the fake tree under TOP/, then the extra members in order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            tar.addfile(_info(f"{TOP}/{name}", size=len(data)), io.BytesIO(data))
        for info, data in extra:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _write_zip(path: Path, files: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{TOP}/{name}", data)
        for info, data in extra:
            zf.writestr(info, data)
    return path


def _zip_link(name: str, to: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A symlink the way `git archive --format=zip` stores one: unix mode S_IFLNK, the target as data."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, to.encode()


def _pin(cat: Catalogue, archive: str, sha: str, subdir: str = "") -> None:
    pin = f'archive = "{archive}"\nsha256 = "{sha}"\n' + (f'subdir = "{subdir}"\n' if subdir else "")
    write_sources(cat.root, UNREACHABLE, cat.upstream.commit, pin)


def _imports(cat: Catalogue) -> str:
    """The offline imports the source's mirror holds (refs/variant/...)."""
    mirror = Layout.at(cat.root).mirror("llama.cpp")
    if not mirror.exists():
        return ""
    return gitmod.out("for-each-ref", "refs/variant", git_dir=mirror)


def _debris(cat: Catalogue) -> list[Path]:
    """Temporary folders left in the state folder (imports, downloads, unpacking)."""
    return [p for p in cat.home.rglob("*") if re.search(r"\.(import|pip|unpack|stage)-", p.name)]


# --- archives that try to get out --------------------------------------------------------------

# An import unpacks the members below the top folder into <catalogue>/.variant/.import-*/
# .tree.unpack-*/tree (tempdirs' folder, then unpack's folder beside its destination): DEPTH '..'
# lead from there to the catalogue's root. Were a refusal missing, the hostile names below would
# write to the catalogue's sources.toml and to <catalogue>/EVIL, where the test looks; with fewer
# they would land in the import's own folder, removed at its end, and no check could fail. The test
# checks that the real layout is still this deep.
DEPTH = 4
UP = "../" * DEPTH

Case = Callable[[Path, dict[str, bytes]], tuple[Path, str]]


def _zip_dotdot(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = f"{TOP}/{UP}sources.toml"  # the catalogue's sources.toml
    extra = [(zipfile.ZipInfo(member), b"[pwned]\n"), (zipfile.ZipInfo(f"{TOP}/{UP}EVIL"), b"x")]
    return _write_zip(mirror / ZIP, files, extra), member


def _zip_symlink_out(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = f"{TOP}/ggml/EVIL-link"  # in tree/ggml: one '..' more than DEPTH to the catalogue's root
    return _write_zip(mirror / ZIP, files, [_zip_link(member, f"../{UP}outside")]), member


def _tar_symlink_to_an_absolute_folder(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    outside = mirror.parent / "outside"  # in tmp_path, outside the catalogue: written through, it shows
    outside.mkdir()
    member = f"{TOP}/outside"
    data = b"written through the link\n"
    extra = [(_info(member, tarfile.SYMTYPE, link=str(outside)), b""), (_info(f"{member}/EVIL"), data)]
    return _write_tar(mirror / TGZ, files, extra), member


def _tar_symlink_up(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = f"{TOP}/up"  # in tree: DEPTH '..' to the catalogue's root
    extra = [(_info(member, tarfile.SYMTYPE, link=UP.rstrip("/")), b""), (_info(f"{member}/EVIL"), b"x")]
    return _write_tar(mirror / TGZ, files, extra), member


def _tar_link_made_outside_by_a_later_link(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    # When "s" is made, "x" does not exist and s leads to <folder>/EVIL; once x -> ".", it leads to
    # <folder>/../EVIL: each link is inside when it is made, together they are not.
    member = f"{TOP}/s"
    extra = [
        (_info(member, tarfile.SYMTYPE, link="x/../EVIL"), b""),
        (_info(f"{TOP}/x", tarfile.SYMTYPE, link="."), b""),
    ]
    return _write_tar(mirror / TGZ, files, extra), member


def _tar_absolute_name(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = str(mirror.parent / "EVIL-absolute")
    return _write_tar(mirror / TGZ, files, [(_info(member), b"x")]), member


def _tar_device(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = f"{TOP}/EVIL-null"
    info = _info(member, tarfile.CHRTYPE)
    info.devmajor, info.devminor = 1, 3
    return _write_tar(mirror / TGZ, files, [(info, b"")]), member


def _tar_hardlink_out(mirror: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    member = f"{TOP}/EVIL-hard"
    hard = _info(member, tarfile.LNKTYPE, link=f"{UP}sources.toml")  # the catalogue's file, by a hardlink
    return _write_tar(mirror / TGZ, files, [(hard, b"")]), member


def _outside_the_state_folder(tmp_path: Path, cat: Catalogue) -> dict[Path, bytes]:
    """Every file under tmp_path but the catalogue's state folder (where the tool writes), with its bytes."""
    return {
        p: p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_symlink() and cat.home not in p.parents
    }


@pytest.mark.parametrize(
    "case",
    [
        _zip_dotdot,
        _zip_symlink_out,
        _tar_symlink_to_an_absolute_folder,
        _tar_symlink_up,
        _tar_link_made_outside_by_a_later_link,
        _tar_absolute_name,
        _tar_device,
        _tar_hardlink_out,
    ],
)
def test_a_pinned_archive_whose_member_gets_out_is_refused_and_nothing_is_written(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive, member = case(mirror, _tree(tmp_path / "tree"))
    _pin(catalogue, archive.name, _sha(archive))
    sources = (catalogue.root / "sources.toml").read_text()
    before = _outside_the_state_folder(tmp_path, catalogue)
    roots: list[Path] = []

    class Recorded(unpacking._Out):
        def __init__(self, archive: Path, root: Path) -> None:
            roots.append(root)
            super().__init__(archive, root)

    monkeypatch.setattr(unpacking, "_Out", Recorded)

    res = run(catalogue.root, "--mirror", str(mirror), "fetch", "llama.cpp", "--offline")
    assert res.code == 2, res.out + res.err
    assert f"{archive}: member '{member}'" in res.err and "refused, nothing was unpacked" in res.err
    assert "Traceback" not in res.err
    # the hostile names reach the catalogue's root from where the members really go (see DEPTH)
    assert [len(r.relative_to(catalogue.root).parts) for r in roots] == [DEPTH], roots
    assert (catalogue.root / "sources.toml").read_text() == sources
    assert not list(tmp_path.rglob("*EVIL*")), "a member got out, or half an import was left"
    assert _outside_the_state_folder(tmp_path, catalogue) == before, "a file outside was written"
    assert _imports(catalogue) == "" and _debris(catalogue) == []


def test_a_tar_hardlink_works_when_the_top_folder_and_the_subdir_are_stripped(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {f"src/{name}": data for name, data in _tree(tmp_path / "tree").items()}
    files["NOTICE"] = b"outside the subdir, named by a hardlink inside it\n"
    extra = [
        (_info(f"{TOP}/src/ggml/ggml-copy.c", tarfile.LNKTYPE, link=f"{TOP}/src/ggml/ggml.c"), b""),
        (_info(f"{TOP}/src/NOTICE", tarfile.LNKTYPE, link=f"{TOP}/NOTICE"), b""),
        (_info(f"{TOP}/src/ggml/alias.h", tarfile.SYMTYPE, link="ggml.h"), b""),
    ]
    archive = _write_tar(mirror / TGZ, files, extra)
    _pin(catalogue, archive.name, _sha(archive), subdir="src")

    res = run(catalogue.root, "--mirror", str(mirror), "fetch", "llama.cpp", "--offline")
    assert res.code == 0, res.out + res.err
    commit = res.out.split()[1]
    mirror_git = Layout.at(catalogue.root).mirror("llama.cpp")
    tree = {
        line.split("\t")[1]: line.split()[:3]
        for line in gitmod.out("ls-tree", "-r", commit, git_dir=mirror_git).splitlines()
    }
    assert tree["ggml/ggml-copy.c"][2] == tree["ggml/ggml.c"][2]  # the same blob: the same bytes
    notice = gitmod.out("cat-file", "-p", tree["NOTICE"][2], git_dir=mirror_git)
    assert notice == files["NOTICE"].decode().strip()
    assert tree["ggml/alias.h"][0] == "120000"  # a link inside the tree stays a link
    assert _debris(catalogue) == []


@pytest.mark.parametrize("where", ["mirror folder", "download cache"])
def test_a_pinned_file_swapped_after_its_hash_was_checked_is_not_what_gets_unpacked(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A mirror folder or download cache may be shared: whoever can write there could replace the
    pinned file between the check of its sha256 and its unpacking. What is unpacked is the copy that
    was hashed."""
    from builder.source import offline

    files = _tree(tmp_path / "tree")
    archive = _write_tar(tmp_path / TGZ, files, [])
    pinned = _sha(archive)
    _pin(catalogue, archive.name, pinned)
    mirror = tmp_path / "mirror" if where == "mirror folder" else catalogue.home / "downloads" / pinned
    mirror.mkdir(parents=True)
    archive.rename(mirror / TGZ)
    swapped = {**files, "ggml/ggml.c": b"int swapped(void) { return 1; }\n"}
    real, swaps = unpacking.unpack, []  # what offline.py calls by that name

    def swap_then_unpack(*args: Any, **kwargs: Any) -> int:
        # the last moment there is: the hash was taken, the unpacking has not begun
        _write_tar(mirror / TGZ, swapped, [(_info(f"{TOP}/EVIL-swapped"), b"x")])
        swaps.append(_sha(mirror / TGZ))
        return real(*args, **kwargs)

    monkeypatch.setattr(offline, "unpack", swap_then_unpack)
    given = ["--mirror", str(mirror)] if where == "mirror folder" else []
    res = run(catalogue.root, *given, "fetch", "llama.cpp", "--offline")
    assert res.code == 0, res.out + res.err
    assert swaps and swaps[0] != pinned  # the file was swapped under the import
    commit = res.out.split()[1]
    mirror_git = Layout.at(catalogue.root).mirror("llama.cpp")
    names = gitmod.out("ls-tree", "-r", "--name-only", commit, git_dir=mirror_git).splitlines()
    assert "EVIL-swapped" not in names and "ggml/ggml.c" in names
    ggml_c = gitmod.out("cat-file", "-p", f"{commit}:ggml/ggml.c", git_dir=mirror_git)
    assert ggml_c == files["ggml/ggml.c"].decode().strip()
    assert _debris(catalogue) == []


# --- damaged files ----------------------------------------------------------------------------


def _truncated_tgz(mirror: Path, tmp: Path) -> Path:
    whole = _write_tar(tmp / "whole.tar.gz", _tree(tmp / "tree"), [])
    (mirror / TGZ).write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return mirror / TGZ


def _not_gzip(mirror: Path, tmp: Path) -> Path:
    (mirror / TGZ).write_bytes(os.urandom(4096))
    return mirror / TGZ


def _corrupt_zip(mirror: Path, tmp: Path) -> Path:
    whole = _write_zip(tmp / "whole.zip", _tree(tmp / "tree"), [])
    data = bytearray(whole.read_bytes())
    data[100:400] = bytes(300)  # the first members' data: their CRC no longer matches
    (mirror / ZIP).write_bytes(bytes(data))
    return mirror / ZIP


@pytest.mark.parametrize("damage", [_truncated_tgz, _not_gzip, _corrupt_zip])
def test_a_damaged_archive_is_exit_2_naming_it_not_an_interruption_or_a_traceback(
    catalogue: Catalogue, run: Run, tmp_path: Path, damage: Callable[[Path, Path], Path]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = damage(mirror, tmp_path)
    _pin(catalogue, archive.name, _sha(archive))
    res = run(catalogue.root, "--mirror", str(mirror), "fetch", "llama.cpp", "--offline")
    assert res.code == 2, res.out + res.err
    assert f"{archive}: damaged or not a" in res.err and "nothing was unpacked" in res.err
    assert "interrupted" not in res.err
    assert _imports(catalogue) == "" and _debris(catalogue) == []


def test_an_end_of_file_anywhere_is_an_error_not_an_interruption(
    catalogue: Catalogue, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """click turns EOFError into the Abort it uses for Ctrl-C; main() must tell them apart."""
    from builder.source import mirror

    def ends_early(*args: object, **kwargs: object) -> None:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(mirror, "ensure_base", ends_early)
    res = run(catalogue.root, "fetch", "llama.cpp")
    assert res.code == 1 and "unexpected end of data: Compressed file ended" in res.err, res.out + res.err
    assert "interrupted" not in res.err


# --- the extraction itself ----------------------------------------------------------------------


def test_unpack_strips_the_top_folder_keeps_inside_links_and_leaves_nothing_on_a_refusal(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "pkg-1.0.tar.gz"
    extra = [
        (_info("./pkg-1.0/bin/tool", size=3), b"#!\n"),
        (_info("./pkg-1.0/bin/again", tarfile.LNKTYPE, link="./pkg-1.0/bin/tool"), b""),
        (_info("pkg-1.0/lib/alias", tarfile.SYMTYPE, link="../bin/tool"), b""),
    ]
    extra[0][0].mode = 0o755
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in extra:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    dest = tmp_path / "out" / "pkg"
    assert unpacking.unpack(archive, dest, unpacking.below_top) == 3
    assert (dest / "bin" / "again").read_bytes() == b"#!\n" and os.access(dest / "bin" / "again", os.X_OK)
    assert os.readlink(dest / "lib" / "alias") == "../bin/tool"
    assert (dest / "lib" / "alias").read_bytes() == b"#!\n"

    with pytest.raises(UserError, match=r"already exists"):
        unpacking.unpack(archive, dest, unpacking.below_top)
    hostile = tmp_path / "hostile.zip"
    _write_zip(hostile, {"a.txt": b"a"}, [_zip_link(f"{TOP}/b", "/etc/passwd")])
    with pytest.raises(UserError, match=rf"{hostile}: member '{TOP}/b': a link to the absolute path"):
        unpacking.unpack(hostile, tmp_path / "out" / "hostile", unpacking.below_top)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg"]  # nothing half-unpacked


def test_a_hostile_sdist_is_refused_when_a_wheel_is_staged(catalogue: Catalogue, tmp_path: Path) -> None:
    pin = 'pypi = "llama-cpp-python==0.3.36"\nsubdir = "vendor/llama.cpp"\nsha256 = "' + "a" * 64 + '"\n'
    write_sources(catalogue.root, str(catalogue.upstream.path), catalogue.upstream.commit, pin)
    catalogue.variant("up-gcc", 'toolchain = "gcc"\n')
    recipe = wheel_make.resolve(Layout.at(catalogue.root), "up-gcc")
    sdist = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    member = "llama_cpp_python-0.3.36/../../EVIL.py"
    with tarfile.open(sdist, "w:gz") as tar:
        for name in ("llama_cpp_python-0.3.36/PKG-INFO", member):
            tar.addfile(_info(name, size=1), io.BytesIO(b"x"))
    with pytest.raises(UserError, match=re.escape(f"{sdist}: member '{member}': a name with '..'")):
        stage.stage(recipe, sdist, tmp_path / "worktree-not-reached")
    assert not recipe.staged.exists() and not list(tmp_path.rglob("EVIL*"))
    assert not [p for p in recipe.work.iterdir() if p.name.startswith(".stage-")]


# --- pip: the pin is checked before any code of the sdist runs -----------------------------------

BACKEND = '''
"""A build backend that leaves a mark when any of its code runs (import included)."""
import os
from pathlib import Path

def _mark(what):
    with open(os.environ["VARIANT_TEST_MARKER"], "a") as f:
        f.write(what + "\\n")

_mark("imported")

def get_requires_for_build_wheel(config_settings=None):
    _mark("get_requires_for_build_wheel")
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _mark("prepare_metadata_for_build_wheel")
    info = Path(metadata_directory) / "marker_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: marker-pkg\\nVersion: 1.0\\n")
    return info.name

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark("build_wheel")
    raise RuntimeError("not needed by a download")
'''


def _marker_sdist(tmp_path: Path) -> Path:
    """A real sdist with an in-tree backend (backend-path) and the fake tree vendored under vendor/fake."""
    top = tmp_path / "sdist-stage" / "marker_pkg-1.0"
    write_tree(top / "vendor" / "fake")
    (top / "_backend").mkdir()
    (top / "_backend" / "marker_backend.py").write_text(BACKEND)
    (top / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "marker_backend"\nbackend-path = ["_backend"]\n'
        '[project]\nname = "marker-pkg"\nversion = "1.0"\n'
    )
    (top / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: marker-pkg\nVersion: 1.0\n")
    links = tmp_path / "links"
    links.mkdir()
    with tarfile.open(links / "marker_pkg-1.0.tar.gz", "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return links / "marker_pkg-1.0.tar.gz"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip as the tool calls it, served from a local folder (no index), and where the backend marks."""
    path = tmp_path / "backend-ran"
    monkeypatch.setenv("VARIANT_TEST_MARKER", str(path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "links"))
    monkeypatch.delenv("PIP_NO_BUILD_ISOLATION", raising=False)
    return path


def _pypi_pin(cat: Catalogue, sha: str) -> None:
    pin = f'pypi = "marker-pkg==1.0"\nsubdir = "vendor/fake"\nsha256 = "{sha}"\n'
    write_sources(cat.root, UNREACHABLE, cat.upstream.commit, pin)


def test_an_sdist_that_is_not_the_pinned_one_runs_none_of_its_code(
    catalogue: Catalogue, run: Run, tmp_path: Path, marker: Path
) -> None:
    sdist = _marker_sdist(tmp_path)
    _pypi_pin(catalogue, "f" * 64)
    res = run(catalogue.root, "fetch", "llama.cpp", "--offline")
    assert not marker.exists(), f"the sdist's backend ran before its pin was checked: {marker.read_text()}"
    assert res.code == 2, res.out + res.err
    assert f"llama.cpp.sha256: the pin says {'f' * 64}" in res.err and _sha(sdist) in res.err
    assert "refused before any of its code ran" in res.err
    assert not (catalogue.home / "downloads" / ("f" * 64)).exists() and _debris(catalogue) == []

    # The pinned file itself is downloaded and imported; its backend does run then (pip prepares
    # its metadata, as a wheel build would): the marker above could have appeared.
    _pypi_pin(catalogue, _sha(sdist))
    res = run(catalogue.root, "fetch", "llama.cpp", "--offline")
    assert res.code == 0 and "origin=pypi" in res.out, res.out + res.err
    assert "prepare_metadata_for_build_wheel" in marker.read_text()
    assert (catalogue.home / "downloads" / _sha(sdist) / sdist.name).is_file() and _debris(catalogue) == []


@pytest.mark.parametrize(
    "extra", [" --config-settings=--build-option=evil", "\\n--index-url http://x.invalid"]
)
def test_a_pypi_pin_is_a_name_and_a_version_and_nothing_for_pip_to_take_as_options(
    catalogue: Catalogue, run: Run, tmp_path: Path, marker: Path, extra: str
) -> None:
    """The pin becomes a line of pip's requirements file: options after it would reach pip."""
    sdist = _marker_sdist(tmp_path)
    pin = f'pypi = "marker-pkg==1.0{extra}"\nsubdir = "vendor/fake"\nsha256 = "{_sha(sdist)}"\n'
    write_sources(catalogue.root, UNREACHABLE, catalogue.upstream.commit, pin)
    res = run(catalogue.root, "fetch", "llama.cpp", "--offline")
    assert res.code == 2 and 'llama.cpp.pypi: expected an exact pin like "name==1.2.3"' in res.err, (
        res.out + res.err
    )
    assert not marker.exists()


# --- what a killed run leaves behind ------------------------------------------------------------

KILLED = """
import os, signal, sys
from pathlib import Path
from builder import tempdirs
context = tempdirs.folder(Path(sys.argv[1]), sys.argv[2], print)  # kept: its exit must never run
folder = context.__enter__()
(folder / "half-written").write_text("the run was killed here")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_in(parent: Path, kind: str) -> Path:
    """A run that made its temporary folder and was killed with SIGKILL while using it."""
    died = subprocess.run([sys.executable, "-c", KILLED, str(parent), kind], cwd=REPO, check=False)
    assert died.returncode == -9, died
    (left,) = (p for p in parent.iterdir() if p.name.startswith(f".{kind}-"))
    assert (left / "half-written").is_file()
    return left


def test_what_a_killed_import_download_or_archive_write_left_is_removed_by_the_next_run(
    catalogue: Catalogue, run: Run, tmp_path: Path, marker: Path, no_network_git: Path
) -> None:
    sdist = _marker_sdist(tmp_path)
    _pypi_pin(catalogue, _sha(sdist))
    left = [_killed_in(catalogue.home, "import"), _killed_in(catalogue.home / "downloads", "pip")]
    not_ours = catalogue.home / ".import-by-hand"  # not a name the tool makes: kept
    not_ours.mkdir()
    res = run(catalogue.root, "fetch", "llama.cpp", "--offline")
    assert res.code == 0, res.out + res.err
    for folder in left:
        assert not folder.exists() and f"removing {folder} (left by a run that was killed)" in res.err
    assert not_ours.is_dir() and _debris(catalogue) == [not_ours]

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    stale = _killed_in(mirror, "archive")
    pin = f'archive = "{TGZ}"\nsha256 = "{"0" * 64}"\n'  # written from git: the upstream is reachable
    write_sources(catalogue.root, str(catalogue.upstream.path), catalogue.upstream.commit, pin)
    res = run(catalogue.root, "mirror", "create", str(mirror))
    assert res.code == 1 and "DIFFERS from the pin" in res.out, res.out + res.err  # the placeholder pin
    assert not stale.exists() and (mirror / TGZ).is_file()
    assert not [p for p in mirror.iterdir() if p.name.startswith(".archive-")]


def test_only_a_name_the_tool_makes_counts_as_a_leftover(tmp_path: Path) -> None:
    """A folder named like one of ours plus a trailing newline is someone else's: `$` let it through."""
    ours = tmp_path / ".import-abcd1234"
    lookalike = tmp_path / ".import-abcd1234\n"
    for folder in (ours, lookalike):
        folder.mkdir()
        (folder / "kept?").write_text("x")
    said: list[str] = []
    with tempdirs.folder(tmp_path, "import", said.append) as fresh:
        assert fresh.is_dir() and fresh.parent == tmp_path
    assert not ours.exists() and said == [f"removing {ours} (left by a run that was killed)"]
    assert (lookalike / "kept?").is_file()


# --- dist/NAME that a person put there ------------------------------------------------------------


@pytest.mark.parametrize("what", ["folder", "copy of a build", "file"])
def test_a_folder_a_person_put_at_dist_name_is_refused_before_anything_is_built(
    catalogue: Catalogue, run: Run, what: str
) -> None:
    catalogue.variant("v", 'targets = ["test-barrier"]\n')
    place = catalogue.dist / "v"
    if what == "file":
        catalogue.dist.mkdir()
        place.write_text("my notes\n")
    else:
        place.mkdir(parents=True)
        (place / "notes.txt").write_text("my notes\n")
        if what == "copy of a build":
            (place / "manifest.json").write_text(json.dumps({"hash": "0" * 64, "tool_version": "0.1.0"}))
    res = run(catalogue.root, "build", "v")
    assert res.code == 2, res.out + res.err
    assert f"{place}: a {'file' if what == 'file' else 'folder'} this tool did not publish" in res.err
    assert ("(a copy of a build" in res.err) == (what == "copy of a build")
    assert "Move it elsewhere (or remove it), then build v again; nothing was built" in res.err
    kept = place if what == "file" else place / "notes.txt"
    assert kept.read_text() == "my notes\n"
    assert not (catalogue.dist / ".builds").exists() and not Layout.at(catalogue.root).build_log("v").exists()


# --- the Python floor -----------------------------------------------------------------------------


def _floor(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_the_python_floor_is_what_the_extraction_needs_and_setup_checks_it() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert declared.startswith(">=")
    floor = _floor(declared[2:])
    # tarfile.data_filter and TarInfo.replace, which builder/unpack.py uses, came with 3.11.4.
    assert floor >= (3, 11, 4)
    assert hasattr(tarfile, "data_filter") and hasattr(tarfile.TarInfo, "replace")
    assert "tarfile.data_filter" in (REPO / "builder" / "unpack.py").read_text()

    makefile = (REPO / "Makefile").read_text()
    (make_floor,) = re.findall(r"^PYTHON_FLOOR\s*:?=\s*(\S+)", makefile, re.M)
    assert _floor(make_floor) == floor, "the Makefile's setup checks another floor than pyproject.toml"
    ok = subprocess.run(["make", "-s", "python-floor"], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    too_old = subprocess.run(
        ["make", "-s", "python-floor", "PYTHON_FLOOR=99.0"], cwd=REPO, capture_output=True, text=True
    )
    assert too_old.returncode != 0, too_old.stdout + too_old.stderr
    assert "llama-variants needs Python >= 99.0" in too_old.stderr
