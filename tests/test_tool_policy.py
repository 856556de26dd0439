"""The one policy for tests whose tool is missing: a failure under CI, a skip that says how elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import tools


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"clang-format-19 is not installed .*under CI"):
        tools.need("clang-format-19", path=str(tmp_path))


def test_a_missing_tool_is_a_skip_naming_its_install_command_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y clang-19 libomp-19-dev"):
        tools.need("clang-19", path=str(tmp_path))


def test_a_present_tool_is_its_path(tmp_path: Path) -> None:
    exe = tmp_path / "clang-19"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert tools.need("clang-19", path=str(tmp_path)) == str(exe)


def test_no_test_module_skips_on_a_missing_tool_by_itself() -> None:
    """Every test that needs a tool asks tools.need, so the CI policy holds everywhere."""
    here = Path(__file__).parent
    offenders = [
        f"{p.name}: {line.strip()}"
        for p in sorted(here.glob("*.py"))
        if p.name not in ("tools.py", "test_tool_policy.py")
        for line in p.read_text().splitlines()
        if ("skipif" in line and "which" in line) or ("pytest.skip(" in line and "install" in line)
    ]
    assert offenders == []
