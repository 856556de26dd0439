"""Unpacking a tar or zip archive that may be hostile: the one extraction of the code base.

A sha256 pin proves the file is the one that was pinned, not that it is
harmless, so every member is checked before anything of it is written:
absolute names, `..` parts, device files and fifos are refused; a symlink must
resolve inside the destination (checked again once everything is out, since a
later link can change where an earlier one leads); a file is never written
through a link that leads outside; a tar hardlink is written as a copy of the
earlier member it names, so it works whatever the caller renames. Everything
is unpacked into a folder beside the destination and renamed onto it at the
end: on a refusal or a damaged file nothing is left half-unpacked. A refusal
or a damaged archive is a UserError naming the archive (and the member).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import UserError

# A member's name inside the archive -> its path under the destination, or None to leave it out.
Select = Callable[[str], str | None]
# What a damaged or foreign file raises while it is read (EOFError: a truncated gzip or xz stream).
DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)
# What a name or a clash inside the archive makes the file system say (not a full disk).
REFUSED_BY_THE_FILE_SYSTEM = (errno.ENAMETOOLONG, errno.EILSEQ, errno.ENOTDIR, errno.EISDIR, errno.EEXIST)


def everything(name: str) -> str | None:
    return name


def below_top(name: str) -> str | None:
    """An sdist's or `git archive --prefix`'s layout: every member without its top folder."""
    parts = PurePosixPath(name).parts[1:]
    return "/".join(parts) if parts else None


class _Out:
    """The folder being unpacked into: every path checked against it before it is written."""

    def __init__(self, archive: Path, root: Path) -> None:
        self.archive = archive
        self.root = root
        self.real = root.resolve()
        self.links: list[tuple[str, Path]] = []
        self.current = ""  # the member being written, for an error the file system raises

    def refuse(self, member: str, why: str) -> UserError:
        return UserError(f"{self.archive}: member {member!r}: {why}; refused, nothing was unpacked")

    def inside(self, path: Path) -> bool:
        return path == self.real or self.real in path.parents

    def place(self, member: str, rel: str) -> Path:
        """Where rel goes: its folder made (inside), whatever stood at rel itself removed."""
        target = self.root / rel
        parent = target.parent.resolve()  # follows the links already unpacked
        if not self.inside(parent):
            raise self.refuse(member, f"it would be written through a link to {parent}, outside the folder")
        parent.mkdir(parents=True, exist_ok=True)
        target = parent / target.name
        if target.is_symlink() or target.is_file():
            target.unlink()  # a later member of the same name wins, as tar does; never written through
        elif target.exists():
            raise self.refuse(member, "a folder of the archive has the same name")
        return target

    def file(self, member: str, rel: str, data: IO[bytes], executable: bool) -> None:
        """A regular file, 0755 or 0644 (the modes git knows): the same archive is the same commit."""
        target = self.place(member, rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(target, flags, 0o755 if executable else 0o644), "wb") as out:
            shutil.copyfileobj(data, out)

    def folder(self, member: str, rel: str) -> None:
        target = self.root / rel
        if not self.inside(target.parent.resolve()):
            raise self.refuse(member, "it would be made through a link that leads outside the folder")
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise self.refuse(member, "a file or link of the archive has the same name")
        target.mkdir(parents=True, exist_ok=True)

    def symlink(self, member: str, rel: str, to: str) -> None:
        if "\0" in to:  # no file system path holds one (a zip's link target is free data)
            raise self.refuse(member, f"a link to {to!r}, a NUL byte in it")
        if not to or PurePosixPath(to).is_absolute():
            raise self.refuse(member, f"a link to the absolute path {to!r}")
        target = self.place(member, rel)
        if not self.inside(Path(os.path.realpath(target.parent / to))):
            raise self.refuse(member, f"a link to {to!r}, outside the folder")
        os.symlink(to, target)
        self.links.append((member, target))

    def recheck_links(self) -> None:
        """A link checked when it was made can lead elsewhere once a later member is a link too."""
        for member, link in self.links:
            if not self.inside(Path(os.path.realpath(link))):
                raise self.refuse(member, f"a link to {os.readlink(link)!r}, outside the folder")


def _clean_name(out: _Out, raw: str) -> str:
    """The member's name with `./` and doubled slashes gone; absolute names and `..` refused."""
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise out.refuse(raw, "an absolute name")
    if ".." in path.parts:
        raise out.refuse(raw, "a name with '..' in it")
    return "/".join(path.parts)


def _selected(out: _Out, raw: str, select: Select) -> str | None:
    rel = select(_clean_name(out, raw))
    if rel is None or rel in ("", "."):
        return None
    return _clean_name(out, rel)


def _tar(tar: tarfile.TarFile, out: _Out, select: Select) -> int:
    files: dict[str, tarfile.TarInfo] = {}  # regular members so far, for the hardlinks that name them
    count = 0
    for member in tar:
        out.current = member.name
        rel = _selected(out, member.name, select)
        if member.isreg():
            files[_clean_name(out, member.name)] = member
        if rel is None:
            continue
        if member.isdir():
            out.folder(member.name, rel)
            continue
        # The standard library's own check (Python >= 3.11.4) on top of ours: one of them missing a
        # case is not enough for a member to get out.
        try:
            tarfile.data_filter(member.replace(name=rel, deep=False), str(out.root))
        except tarfile.FilterError as exc:
            raise out.refuse(member.name, str(exc)) from None
        if member.isreg():
            data = tar.extractfile(member)
            assert data is not None
            out.file(member.name, rel, data, bool(member.mode & stat.S_IXUSR))  # git reads the owner x bit
        elif member.issym():
            out.symlink(member.name, rel, member.linkname)
        elif member.islnk():
            target = files.get(_clean_name(out, member.linkname))
            if target is None:
                raise out.refuse(member.name, f"a hardlink to {member.linkname!r}, no file before it")
            data = tar.extractfile(target)
            assert data is not None
            out.file(member.name, rel, data, bool(target.mode & stat.S_IXUSR))
        else:
            raise out.refuse(member.name, "a device file or fifo")
        count += 1
    return count


def _zip(zf: zipfile.ZipFile, out: _Out, select: Select) -> int:
    count = 0
    for info in zf.infolist():
        out.current = info.filename
        rel = _selected(out, info.filename, select)
        if rel is None:
            continue
        mode = info.external_attr >> 16 if info.create_system == 3 else 0  # unix modes only from unix
        if info.is_dir() or stat.S_ISDIR(mode):  # a folder's name may lack its trailing slash
            out.folder(info.filename, rel)
            continue
        if stat.S_ISLNK(mode):
            out.symlink(info.filename, rel, zf.read(info).decode("utf-8", "surrogateescape"))
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # zip writers often leave the type out
            raise out.refuse(info.filename, "a device file or fifo")
        else:
            with zf.open(info) as data:
                out.file(info.filename, rel, data, bool(mode & 0o111))
        count += 1
    return count


@contextlib.contextmanager
def _beside(dest: Path) -> Iterator[Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.unpack-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack(archive: Path, dest: Path, select: Select = everything, *, shown: Path | None = None) -> int:
    """archive's members (a .zip, or a tar of any compression) as dest, a folder that must not exist yet.

    select maps each member's name to its path under dest (None leaves it out);
    shown is what errors call the archive (the file a private copy was made of).
    Returns how many files and links were written.
    """
    name = shown or archive
    if dest.exists() or dest.is_symlink():
        raise UserError(f"{dest}: already exists; {name.name} is only unpacked into a new folder")
    kind = "zip" if archive.name.endswith(".zip") else "tar"
    with _beside(dest) as tmp:
        out = _Out(name, tmp / "tree")
        out.root.mkdir()
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    count = _zip(zf, out, select)
            else:
                with tarfile.open(archive) as tar:
                    count = _tar(tar, out, select)
        except DAMAGED as exc:
            raise UserError(
                f"{name}: damaged or not a {kind} archive ({type(exc).__name__}: {exc}); nothing was unpacked"
            ) from None
        except (RuntimeError, NotImplementedError) as exc:  # zipfile: encrypted, or an unknown method
            if kind != "zip":
                raise
            raise out.refuse(out.current, str(exc)) from None
        except OSError as exc:
            if exc.errno not in REFUSED_BY_THE_FILE_SYSTEM:
                raise
            raise out.refuse(out.current, exc.strerror or str(exc)) from None
        out.recheck_links()
        _claim(dest, out.root, name)
    return count


def _claim(dest: Path, tree: Path, archive: Path) -> None:
    """tree renamed to dest, unless something appeared at dest while the archive was being unpacked.

    rename(2) silently replaces an empty folder and fails on a full one: dest
    is made first (which fails if anything is there), so the rename only ever
    replaces the empty folder made here; files put into it meanwhile stop it.
    """
    refused = UserError(
        f"{dest}: appeared while {archive.name} was being unpacked; it was left as it is and nothing "
        "was unpacked (is another run using the same folder?)"
    )
    try:
        dest.mkdir()
    except FileExistsError:
        raise refused from None
    try:
        os.rename(tree, dest)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise refused from None
