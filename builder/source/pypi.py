"""The offline source: a pinned PyPI sdist that vendors a source tree, imported as a commit.

llama-cpp-python's sdist vendors llama.cpp under vendor/llama.cpp. We fetch it
with pip (the ordinary client, so the user's index and proxy settings apply),
check its sha256 against the pin, and commit the subdirectory into the source's
bare mirror with a fixed identity, date and message: the same sdist always
gives the same commit, on any machine, so worktrees and ccache keys agree.
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .. import git
from ..digest import sha256_file
from ..errors import UserError
from ..layout import Layout
from ..run import capture
from .sources import PypiPin, Say, Source

IMPORT_DATE = "@946684800 +0000"  # 2000-01-01: fixed, so the commit hash is a function of the tree
IMPORT_ENV = {
    "GIT_AUTHOR_NAME": "llama-variants",
    "GIT_AUTHOR_EMAIL": "llama-variants@localhost",
    "GIT_AUTHOR_DATE": IMPORT_DATE,
    "GIT_COMMITTER_DATE": IMPORT_DATE,
    **git.TOOL_IDENTITY,
}


def ref(pin: PypiPin) -> str:
    return f"refs/variant/pypi/{pin.sha256}"


def imported_commit(mirror: Path, pin: PypiPin) -> str | None:
    if not mirror.exists():
        return None
    res = git.git("rev-parse", "--verify", "--quiet", ref(pin) + "^{commit}", git_dir=mirror, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def fetch(layout: Layout, pin: PypiPin, say: Say) -> Path:
    """The sdist file, from the download cache or from pip; its sha256 is checked either way."""
    cache = layout.downloads / pin.sha256
    for cached in sorted(cache.glob("*")) if cache.is_dir() else []:
        if cached.is_file() and sha256_file(cached) == pin.sha256:
            return cached
    layout.downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.downloads, prefix=".pip-") as tmp:
        say(f"downloading {pin.requirement} (sdist) with pip")
        # --no-binary names the one project: with ":all:" pip would also build the
        # sdist's build requirements from source (scikit-build-core can ask for the
        # cmake package, which then compiles CMake for many minutes).
        project = pin.requirement.split("==", 1)[0].strip()
        capture(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", project,
                "--disable-pip-version-check", "--quiet", "--dest", tmp, pin.requirement,
            ]
        )  # fmt: skip
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if len(files) != 1:
            raise UserError(f"pip download {pin.requirement}: expected one file, got {len(files)}")
        got = sha256_file(files[0])
        if got != pin.sha256:
            raise UserError(
                f"{pin.requirement}: sha256 mismatch: the pin says {pin.sha256}, "
                f"the downloaded {files[0].name} has {got}"
            )
        cache.mkdir(parents=True, exist_ok=True)
        final = cache / files[0].name
        shutil.move(files[0], final)
        return final


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


def extract(archive: Path, subdir: str, dest: Path) -> int:
    """Unpack archive/<top>/<subdir>/ into dest; returns the number of files."""
    count = 0
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _wanted(info.filename, subdir)
                if rel is None or info.is_dir():
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
                if (info.external_attr >> 16) & 0o111:
                    target.chmod(0o755)
                count += 1
        return count
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            rel = _wanted(member.name, subdir)
            if rel is None or member.isdir():
                continue
            member.name = rel
            tar.extract(member, dest, filter="data")
            count += 1
    return count


def import_tree(layout: Layout, src: Source, say: Say) -> str:
    """Import the pinned sdist's subdir into the mirror as a deterministic commit."""
    assert src.pypi is not None
    pin = src.pypi
    archive = fetch(layout, pin, say)
    mirror = layout.mirror(src.name)
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        git.git("init", "--bare", "--quiet", mirror)
        git.git("remote", "add", "origin", src.url, git_dir=mirror)
    layout.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.home, prefix=".import-") as tmp:
        tree_dir = Path(tmp) / "tree"
        tree_dir.mkdir()
        n = extract(archive, pin.subdir, tree_dir)
        if n == 0:
            raise UserError(f"{pin.requirement}: the sdist has no files under {pin.subdir}/")
        say(f"{src.name}: committing {n} files from {archive.name}:{pin.subdir}")
        env = {**IMPORT_ENV, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        work = ["--work-tree", str(tree_dir)]
        # --force: the tree's own .gitignore must not drop files the sdist ships.
        git.git(*work, "add", "--all", "--force", ".", git_dir=mirror, env=env, cwd=tree_dir, neutral=True)
        tree = git.git("write-tree", git_dir=mirror, env=env, neutral=True).stdout.strip()
        message = (
            f"Import {pin.subdir} from {pin.requirement}\n\n"
            f"sdist sha256: {pin.sha256}\n"
            f"upstream: {src.url} @ {src.commit}\n"
        )
        commit = git.git(
            "commit-tree", tree, "-m", message, git_dir=mirror, env=env, neutral=True
        ).stdout.strip()
    git.git("update-ref", ref(pin), commit, git_dir=mirror)
    return commit
