"""A source's offline history (builder/source/history.py): history.toml read and checked, refs named."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from builder.errors import SpecError, UserError
from builder.source import history

ROOT = Path(__file__).resolve().parent.parent


def _entry(version: str, commit: str, day: int, sha: str | None = None) -> str:
    return (
        f'[["llama.cpp".versions]]\nversion = "{version}"\ncommit = "{commit * 40}"\n'
        f'sha256 = "{sha or commit * 64}"\ndate = 2026-06-{day:02d}\n'
    )


HEAD = '["llama.cpp"]\npypi = "llama-cpp-python"\nsubdir = "vendor/llama.cpp"\n'


def _write(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "history.toml"
    path.write_text(HEAD + "".join(entries))
    return path


def _three(tmp_path: Path) -> history.History:
    path = _write(tmp_path, _entry("0.3.28", "a", 7), _entry("0.3.29", "b", 13), _entry("0.3.30", "c", 16))
    return history.load(path, ["llama.cpp"])["llama.cpp"]


def test_versions_are_named_by_version_or_commit_prefix_and_ordered(tmp_path: Path) -> None:
    h = _three(tmp_path)
    assert [e.version for e in h.entries] == ["0.3.28", "0.3.29", "0.3.30"]
    assert h.find("0.3.29").commit == "b" * 40 and h.find("bbbbbbb").version == "0.3.29"
    assert h.entries[0].date == datetime.date(2026, 6, 7)
    assert [e.version for e in h.between("0.3.28", "cccccccc")] == ["0.3.28", "0.3.29", "0.3.30"]
    assert h.find("c" * 40 + "").version == "0.3.30"  # a full commit finds its entry too


def test_two_releases_of_one_commit_and_an_abbreviated_commit_are_one_tree(tmp_path: Path) -> None:
    same = _entry("0.3.18", "a", 8, sha="d" * 64)  # bindings only: the same vendored commit
    path = _write(
        tmp_path,
        _entry("0.3.17", "a", 7),
        same,
        _entry("0.3.19", "b", 9, sha="e" * 64).replace("b" * 40, "b" * 9),
    )
    h = history.load(path, ["llama.cpp"])["llama.cpp"]
    assert h.find("aaaaaaa").version == "0.3.17" and h.find("0.3.18").commit == "a" * 40
    assert h.find("b" * 40).version == "0.3.19"  # the full commit of an abbreviated entry


def test_bad_refs_are_user_errors_that_say_what_was_expected(tmp_path: Path) -> None:
    h = _three(tmp_path)
    with pytest.raises(UserError, match=r"no version or commit '0\.3\.31'.*did you mean"):
        h.find("0.3.31")
    with pytest.raises(UserError, match="no version or commit 'bbb'"):
        h.find("bbb")  # too short to be a commit prefix
    with pytest.raises(UserError, match="are one version"):
        h.between("0.3.29", "bbbbbbb")
    with pytest.raises(UserError, match=r"0\.3\.30 is newer than 0\.3\.28;"):
        h.between("0.3.30", "0.3.28")


@pytest.mark.parametrize(
    ("entries", "key", "message"),
    [
        ((_entry("0.3.28", "A", 7),), "versions[0].commit", "7 to 40 lowercase hex digits"),
        ((_entry("0.3.28", "a", 7, sha="ab"),), "versions[0].sha256", "64 lowercase hex digits"),
        ((_entry("0.3.28", "a", 7), _entry("0.3.28", "b", 8)), "versions[1].version", "listed twice"),
        (
            (_entry("0.3.28", "a", 7), _entry("0.3.29", "b", 8, sha="a" * 64)),
            "versions[1].sha256",
            "listed twice",
        ),
        ((_entry("0.3.28", "a", 9), _entry("0.3.29", "b", 8)), "versions[1].date", "oldest first"),
        (
            (_entry("0.3.28", "a", 7).replace("date = 2026-06-07", 'date = "June"'),),
            "versions[0].date",
            "date",
        ),
    ],
)
def test_a_bad_entry_names_its_key(tmp_path: Path, entries: tuple[str, ...], key: str, message: str) -> None:
    path = _write(tmp_path, *entries)
    with pytest.raises(SpecError, match=message) as err:
        history.load(path, ["llama.cpp"])
    assert f"llama.cpp.{key}" in str(err.value)


def test_a_table_for_an_unknown_source_or_without_its_package_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _entry("0.3.28", "a", 7))
    with pytest.raises(SpecError, match=r'not a source of sources\.toml \(did you mean "llama\.cp"\?\)'):
        history.load(path, ["llama.cp"])
    path.write_text('["llama.cpp"]\nsubdir = "vendor"\nversions = []\n')
    with pytest.raises(SpecError, match="expected pypi"):
        history.load(path, ["llama.cpp"])
    assert history.load(tmp_path / "none.toml", ["llama.cpp"]) == {}


def test_the_shipped_history_ends_at_the_pin_of_sources_toml() -> None:
    """history.toml's newest llama.cpp entry is the commit and sdist sources.toml pins."""
    from builder import tomlfile

    pins = tomlfile.load(ROOT / "sources.toml")
    h = history.load(ROOT / "history.toml", pins)["llama.cpp"]
    pin = pins["llama.cpp"]
    assert len(h.entries) == 21 and h.entries[0].version == "0.3.16"
    assert (h.entries[-1].commit, h.entries[-1].sha256) == (pin["commit"], pin["sha256"])
    assert f"{h.pypi}=={h.entries[-1].version}" == pin["pypi"] and h.subdir == pin["subdir"]
