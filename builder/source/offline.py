"""The offline fallback: a sha256-pinned file holding the tree, imported as a deterministic commit.

Two kinds, the way Spack keeps source mirrors: a PyPI sdist that vendors the
tree (llama-cpp-python vendors llama.cpp under vendor/llama.cpp), fetched with
pip so the user's index and proxy settings apply; or a source archive (a `git
archive` of the pinned commit) found in the mirror folders (`--mirror DIR`,
VARIANT_MIRRORS). Either is checked against its sha256 and its subdirectory is
committed into the source's bare mirror with a fixed identity, date and
message: the same file always gives the same commit, on any machine, so
worktrees and ccache keys agree.

The file is hashed while it is copied into a private folder of the caller's,
and that copy is what gets unpacked: a mirror folder or download cache may be
shared, and whoever can write there could otherwise swap the file between the
hash and the unpacking.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import git, tempdirs
from ..errors import CommandError, UserError
from ..layout import Layout
from ..run import capture
from ..unpack import unpack
from .sources import Pin, Say, Source

IMPORT_DATE = "@946684800 +0000"  # 2000-01-01: fixed, so the commit hash is a function of the tree
IMPORT_ENV = {
    "GIT_AUTHOR_NAME": "llama-variants",
    "GIT_AUTHOR_EMAIL": "llama-variants@localhost",
    "GIT_AUTHOR_DATE": IMPORT_DATE,
    "GIT_COMMITTER_DATE": IMPORT_DATE,
    **git.TOOL_IDENTITY,
}


@dataclass(frozen=True)
class Fetched:
    path: Path  # the private copy: the bytes that were hashed, and the ones to unpack
    origin: Path  # where it was found: what messages name


def ref(pin: Pin) -> str:
    return f"refs/variant/{pin.kind}/{pin.sha256}"


def imported_commit(mirror: Path, pin: Pin) -> str | None:
    if not mirror.exists():
        return None
    res = git.git("rev-parse", "--verify", "--quiet", ref(pin) + "^{commit}", git_dir=mirror, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def _take(path: Path, into: Path) -> tuple[Path, str]:
    """path copied into the folder `into`, and the sha256 of the bytes copied (read once, from one open)."""
    copy = into / path.name
    copy.unlink(missing_ok=True)
    h = hashlib.sha256()
    with open(path, "rb") as fin, open(copy, "xb") as fout:
        for chunk in iter(lambda: fin.read(1 << 20), b""):
            h.update(chunk)
            fout.write(chunk)
    return copy, h.hexdigest()


def _in_mirrors(layout: Layout, src: Source, pin: Pin, into: Path) -> Fetched | None:
    """The pinned file from the mirror folders, the first with the pinned sha256.

    A file under the pinned name with another sha256 is an error when no folder has the right
    one (an sdist may be there as .tar.gz and as .zip): it is named, instead of pip downloading
    the file from the index behind the person's back.
    """
    wrong: list[tuple[Path, str]] = []
    for folder in layout.mirror_dirs:
        candidates = [folder / pin.name] if pin.kind == "archive" else sorted(folder.glob(_sdist_glob(pin)))
        for path in candidates:
            if not path.is_file():
                continue
            copy, got = _take(path, into)
            if got == pin.sha256:
                return Fetched(copy, path)
            copy.unlink()
            wrong.append((path, got))
            if pin.kind == "archive":
                break
    if wrong:
        path, got = wrong[0]
        raise UserError(
            f"{src.file}: {src.name}.sha256: {path} has sha256 {got}, the pin says {pin.sha256} "
            f"({pin.name}: a different file under the pinned name; nothing was imported)"
        )
    return None


def _sdist_glob(pin: Pin) -> str:
    project, version = pin.name.split("==", 1)
    return f"{project.strip().replace('-', '[-_]')}-{version.strip()}.*"


def fetch(layout: Layout, src: Source, say: Say, into: Path) -> Fetched:
    """The pinned file from the download cache, a mirror folder or (sdists) pip, copied into `into`.

    `into` is a private folder of the caller's (not a shared mirror or cache):
    the copy is hashed as it is written, so it is the file the pin was checked
    against, whatever happens to the one it came from afterwards.
    """
    pin = src.offline
    assert pin is not None
    into.mkdir(parents=True, exist_ok=True)
    cache = layout.downloads / pin.sha256
    for cached in sorted(cache.glob("*")) if cache.is_dir() else []:
        if cached.is_file():
            copy, sha = _take(cached, into)
            if sha == pin.sha256:
                return Fetched(copy, cached)
            copy.unlink()  # a damaged cache entry: the next place may have the file
    found = _in_mirrors(layout, src, pin, into)
    if found is not None:
        return found
    if pin.kind == "archive":
        where = ", ".join(map(str, layout.mirror_dirs)) or "none given"
        raise UserError(
            f"{src.file}: {src.name}.archive: {pin.name} is in no mirror folder (mirrors: {where}); "
            f"give the folder that holds it with --mirror DIR or VARIANT_MIRRORS, or let git reach {src.url}"
        )
    with tempdirs.folder(layout.downloads, "pip", say) as tmp:
        say(f"downloading {pin.name} (sdist) with pip")
        downloaded = _pip_download(src, pin, tmp)
        copy, sha = _take(downloaded, into)
        if sha != pin.sha256:  # pip checked it already; a second look costs one read
            raise UserError(
                f"{src.file}: {src.name}.sha256: the pin says {pin.sha256}, "
                f"the downloaded {downloaded.name} has {sha}"
            )
        cache.mkdir(parents=True, exist_ok=True)
        final = cache / downloaded.name
        shutil.move(downloaded, final)
        return Fetched(copy, final)


def _pip_download(src: Source, pin: Pin, tmp: Path) -> Path:
    """The pinned sdist, downloaded by pip in hash-checking mode into tmp/got/.

    `pip download` prepares an sdist's metadata, which runs the sdist's build
    backend. With the pin as the requirement's --hash, pip compares the sha256
    as soon as the file is downloaded and stops on a mismatch: a file that is
    not the pinned one never gets to run any of its code. (The pinned one's
    backend does run, as it does when a wheel is built from it.) pip's own
    temporary folders go under tmp too, so a killed download leaves nothing
    the next one does not remove.
    """
    got, scratch = tmp / "got", tmp / "tmp"
    got.mkdir()
    scratch.mkdir()
    requirement = tmp / "requirement.txt"
    requirement.write_text(f"{pin.name} --hash=sha256:{pin.sha256}\n")
    # --no-binary names the one project: with ":all:" pip would also build the
    # sdist's build requirements from source (scikit-build-core can ask for the
    # cmake package, which then compiles CMake for many minutes).
    project = pin.name.split("==", 1)[0].strip()
    res = capture(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", project, "--require-hashes",
            "--disable-pip-version-check", "--quiet", "--dest", got, "-r", requirement,
        ],
        env={"TMPDIR": str(scratch)},
        check=False,
    )  # fmt: skip
    if res.returncode != 0:
        if "DO NOT MATCH THE HASHES" in res.stderr:
            found = re.search(r"\bGot\s+([0-9a-f]{64})", res.stderr)
            raise UserError(
                f"{src.file}: {src.name}.sha256: the pin says {pin.sha256}, the file pip downloaded for "
                f"{pin.name} has {found[1] if found else 'another sha256'} (refused before any of its code "
                "ran; nothing was kept)"
            )
        raise CommandError(list(res.argv), res.returncode, "\n".join(res.stderr.strip().splitlines()[-30:]))
    files = [p for p in got.iterdir() if p.is_file()]
    if len(files) != 1:
        raise UserError(f"pip download {pin.name}: expected one file, got {len(files)}")
    return files[0]


def _wanted(name: str, subdir: str) -> str | None:
    """The member's path inside subdir, or None to skip it (outside, or git metadata)."""
    parts = PurePosixPath(name).parts[1:]  # drop the sdist's top folder "pkg-1.0/"
    sub = PurePosixPath(subdir).parts if subdir not in ("", ".") else ()
    if tuple(parts[: len(sub)]) != tuple(sub):
        return None
    rest = parts[len(sub) :]
    # The vendored tree's .git is a gitlink file pointing at a parent repo that
    # is not in the sdist; no .git of any kind belongs in the imported tree.
    if not rest or ".git" in rest:
        return None
    return "/".join(rest)


def extract(archive: Fetched, subdir: str, dest: Path) -> int:
    """Unpack the copy's <top>/<subdir>/ as dest (a new folder); returns the number of files."""
    return unpack(archive.path, dest, lambda name: _wanted(name, subdir), shown=archive.origin)


def import_tree(layout: Layout, src: Source, say: Say) -> str:
    """Import the pinned file's subdir into the mirror as a deterministic commit."""
    pin = src.offline
    assert pin is not None
    mirror = layout.mirror(src.name)
    with tempdirs.folder(layout.home, "import", say) as tmp:
        archive = fetch(layout, src, say, tmp / "pinned")
        if not mirror.exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            git.git("init", "--bare", "--quiet", mirror)
            git.git("remote", "add", "origin", src.url, git_dir=mirror)
        tree_dir = tmp / "tree"
        n = extract(archive, pin.subdir, tree_dir)
        if n == 0:
            raise UserError(f"{pin.name}: no files under {pin.subdir}/")
        say(f"{src.name}: committing {n} files from {archive.origin.name}:{pin.subdir}")
        env = {**IMPORT_ENV, "GIT_INDEX_FILE": str(tmp / "index")}
        work = ["--work-tree", str(tree_dir)]
        # --force: the tree's own .gitignore must not drop files the sdist ships.
        git.git(*work, "add", "--all", "--force", ".", git_dir=mirror, env=env, cwd=tree_dir, neutral=True)
        tree = git.git("write-tree", git_dir=mirror, env=env, neutral=True).stdout.strip()
        message = (
            f"Import {pin.subdir} from {pin.name}\n\n"
            f"{'sdist' if pin.kind == 'pypi' else 'archive'} sha256: {pin.sha256}\n"
            f"upstream: {src.url} @ {src.commit}\n"
        )
        commit = git.git(
            "commit-tree", tree, "-m", message, git_dir=mirror, env=env, neutral=True
        ).stdout.strip()
    git.git("update-ref", ref(pin), commit, git_dir=mirror)
    return commit


def write_archive(layout: Layout, src: Source, commit: str, folder: Path, say: Say) -> Path:
    """`git archive` of the pinned commit as folder/<pinned name>, gzip without a timestamp.

    What `variant mirror create` writes for an air-gapped machine: the same
    commit always gives the same bytes with the same git, so the file can be
    checked against the pin.
    """
    pin = src.offline
    assert pin is not None and pin.kind == "archive"
    top = pin.name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar").removesuffix(".zip")
    dest = folder / pin.name
    fmt = "zip" if pin.name.endswith(".zip") else "tar"
    with tempdirs.folder(folder, "archive", say) as tmp:
        raw = tmp / "tree"
        git.git(
            "archive",
            f"--format={fmt}",
            f"--prefix={top}/",
            "-o",
            raw,
            commit,
            git_dir=layout.mirror(src.name),
        )
        if pin.name.endswith((".tar.gz", ".tgz")):
            packed = tmp / "tree.gz"
            with open(raw, "rb") as fin, gzip.GzipFile(packed, "wb", mtime=0) as fout:
                shutil.copyfileobj(fin, fout)
            raw = packed
        os.replace(raw, dest)
    return dest
