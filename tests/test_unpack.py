"""builder/unpack.py's edge cases: what a zip may say about a member, and a destination that appears
while an archive is being unpacked."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from builder import unpack as unpacking
from builder.errors import UserError


def _zip(path: Path, members: list[tuple[str, int | None, bytes]]) -> Path:
    """A zip of (name, unix mode or None, data) members, written as a unix zip tool writes them."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, mode, data in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def test_a_zip_link_to_a_name_with_a_nul_byte_is_refused_not_a_crash(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip", [("top/a.txt", None, b"a"), ("top/l", stat.S_IFLNK | 0o777, b"a.txt\0x")]
    )
    dest = tmp_path / "out"
    with pytest.raises(
        UserError, match=r"member 'top/l': a link to 'a\.txt\\x00x', a NUL byte in it; refused"
    ):
        unpacking.unpack(archive, dest, unpacking.below_top)
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_a_zip_folder_without_its_trailing_slash_is_a_folder(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip",
        [("top/sub", stat.S_IFDIR | 0o755, b""), ("top/sub/f.txt", stat.S_IFREG | 0o644, b"f")],
    )
    dest = tmp_path / "out"
    assert unpacking.unpack(archive, dest, unpacking.below_top) == 1
    assert (dest / "sub").is_dir() and (dest / "sub" / "f.txt").read_bytes() == b"f"
    # a folder member alone: made, even with no file under it
    lone = _zip(tmp_path / "lone.zip", [("top/empty", stat.S_IFDIR | 0o755, b"")])
    assert unpacking.unpack(lone, tmp_path / "lone", unpacking.below_top) == 0
    assert (tmp_path / "lone" / "empty").is_dir()


@pytest.mark.parametrize("what", ["an empty folder", "a folder with a file", "a file"])
def test_a_destination_that_appears_while_unpacking_is_left_as_it_is_and_refused(
    tmp_path: Path, what: str
) -> None:
    """rename(2) silently replaced an empty folder at dest, and failed with a traceback on a full one."""
    archive = _zip(tmp_path / "a.zip", [("top/a.txt", None, b"a"), ("top/b.txt", None, b"b")])
    dest = tmp_path / "out"

    def appears(name: str) -> str | None:
        # another run (or a person) puts something at dest while the members are being written
        if not (dest.exists() or dest.is_symlink()):
            if what == "a file":
                dest.write_text("theirs")
            else:
                dest.mkdir()
                if what == "a folder with a file":
                    (dest / "theirs.txt").write_text("theirs")
        return unpacking.below_top(name)

    with pytest.raises(
        UserError, match=rf"{dest}: appeared while a\.zip was being unpacked; it was left as it is"
    ):
        unpacking.unpack(archive, dest, appears)
    if what == "a file":
        assert dest.read_text() == "theirs"
    else:
        assert sorted(p.name for p in dest.iterdir()) == ([] if what == "an empty folder" else ["theirs.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]  # no unpacking folder left
