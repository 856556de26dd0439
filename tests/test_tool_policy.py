"""The one policy for tests whose tool is missing: a failure under CI, a skip that says how elsewhere."""

from __future__ import annotations

import ast
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


def _calls_which(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "which"
        for n in ast.walk(node)
    )


def _own_tool_policies(source: str) -> list[int]:
    """Lines where a test decides by itself what a missing tool means: a skip, a skipif, or a branch
    (or a module-level flag) on shutil.which."""
    tree = ast.parse(source)
    found = [
        n.lineno
        for n in ast.walk(tree)
        if (isinstance(n, ast.Attribute) and n.attr in ("skip", "skipif"))
        or (isinstance(n, ast.If | ast.IfExp | ast.While | ast.Assert) and _calls_which(n.test))
    ]
    found += [n.lineno for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign) and _calls_which(n)]
    return sorted(found)


def test_the_policy_scan_finds_each_way_a_test_used_to_decide_for_itself() -> None:
    # the shapes main had before tools.need: each must be found
    assert _own_tool_policies('HAS_CLANG = shutil.which("clang-19") is not None\n')
    assert _own_tool_policies('@pytest.mark.skipif(not HAS_CLANG, reason="no clang")\ndef t(): pass\n')
    assert _own_tool_policies('def t():\n    if shutil.which("clang-19"):\n        pass\n')
    assert _own_tool_policies('def t():\n    pytest.skip("clang-format-19 is not installed")\n')
    # finding a tool's path to use it is fine
    assert not _own_tool_policies('def t():\n    return shutil.which("actionlint") or need("actionlint")\n')


def test_no_test_module_decides_for_itself_what_a_missing_tool_means() -> None:
    """Every test that needs a tool asks tools.need, so the CI policy holds everywhere."""
    here = Path(__file__).parent
    offenders = [
        f"{p.name}:{line}"
        for p in sorted(here.glob("*.py"))
        if p.name not in ("tools.py", "test_tool_policy.py")
        for line in _own_tool_policies(p.read_text())
    ]
    assert offenders == []
