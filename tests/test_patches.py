"""Patch series: git am --3way onto variant/<name>, rollback on failure, reuse when current."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Catalogue, Outcome
from .fakes import git, make_patch

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


def _am_state(wt: Path) -> Path:
    """Where an unfinished `git am` keeps its state for this worktree."""
    return wt / git(wt, "rev-parse", "--git-path", "rebase-apply")


def _series(cat: Catalogue) -> Path:
    sdir = cat.series(
        "kind",
        'description = "barrier kind"\nupstream = "https://github.com/ggml-org/llama.cpp/pull/1"\n'
        'status = "proposed"\napplies-to = ["llama.cpp"]\nbench = ["barrier"]\n',
    )
    make_patch(cat.upstream.path, sdir, name="kind one", old="return 0; }", new="return 1; }")
    return sdir


def test_patches_become_commits_with_authorship(catalogue: Catalogue, run: Run) -> None:
    _series(catalogue)
    catalogue.variant("p", TARGETS + 'patches = ["kind"]\n')
    res = run(catalogue.root, "build", "p")
    assert res.code == 0, res.err
    out = subprocess.run([catalogue.dist / "p" / "bin" / "test-barrier"], capture_output=True, text=True)
    assert "kind=1" in out.stdout
    wt = catalogue.home / "work" / "p" / "src"
    log = git(wt, "log", "--format=%an <%ae>|%cn|%s", f"{catalogue.upstream.commit}..HEAD")
    assert log == "Kernel Hacker <hacker@example.org>|llama-variants|ggml: kind one"
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "variant/p"
    m = json.loads((catalogue.dist / "p" / "manifest.json").read_text())
    assert [p["file"] for p in m["patches"]] == ["0001-ggml-kind-one.patch"]
    assert m["patches"][0]["author"] == "Kernel Hacker <hacker@example.org>"
    check = next(c for c in m["verification"] if c["check"] == "patches")
    assert check["ok"] and "1 patch commit(s) on variant/p" in check["detail"]


def test_same_inputs_give_the_same_commits(catalogue: Catalogue, run: Run) -> None:
    _series(catalogue)
    catalogue.variant("a", TARGETS + 'patches = ["kind"]\n')
    catalogue.variant("b", TARGETS + 'patches = ["kind"]\n[cmake]\nGGML_OPENMP = false\n')
    assert run(catalogue.root, "build", "a", "b").code == 0
    heads = {git(catalogue.home / "work" / v / "src", "rev-parse", "HEAD") for v in ("a", "b")}
    assert len(heads) == 1


def test_failing_patch_names_series_file_and_hunk_and_restores(catalogue: Catalogue, run: Run) -> None:
    sdir = _series(catalogue)
    catalogue.variant("p", TARGETS + 'patches = ["kind"]\n')
    assert run(catalogue.root, "build", "p").code == 0
    wt = catalogue.home / "work" / "p" / "src"
    head_before = git(wt, "rev-parse", "HEAD")
    link_before = (catalogue.dist / "p").readlink()
    # A second patch written against a tree the first one never produced.
    bad = sdir / "0002-ggml-conflicts.patch"
    good = (sdir / "0001-ggml-kind-one.patch").read_text()
    bad.write_text(
        good.replace("ggml: kind one", "ggml: conflicts")
        .replace("-int ggml_barrier_kind(void) { return 0; }", "-int ggml_barrier_kind(void) { return 7; }")
        .replace("+int ggml_barrier_kind(void) { return 1; }", "+int ggml_barrier_kind(void) { return 8; }")
    )
    res = run(catalogue.root, "build", "p")
    assert res.code == 2, res.err
    assert "series kind: patch 0002-ggml-conflicts.patch" in res.err
    assert "ggml/ggml.c" in res.err and "was left as it was" in res.err
    assert git(wt, "rev-parse", "HEAD") == head_before
    assert git(wt, "status", "--porcelain") == ""
    assert not (wt / ".git").is_dir() and not _am_state(wt).exists()
    assert (catalogue.dist / "p").readlink() == link_before


def test_current_worktree_is_reused_untouched(catalogue: Catalogue, run: Run) -> None:
    _series(catalogue)
    path = catalogue.variant("p", TARGETS + 'patches = ["kind"]\n')
    assert run(catalogue.root, "build", "p").code == 0
    patched = catalogue.home / "work" / "p" / "src" / "ggml" / "ggml.c"
    stamp = patched.stat().st_mtime_ns
    path.write_text(TARGETS + 'patches = ["kind"]\n[cmake]\nGGML_OPENMP = false\n')
    res = run(catalogue.root, "build", "p")
    assert res.code == 0 and "applying" not in res.err
    assert patched.stat().st_mtime_ns == stamp


def test_local_edits_in_build_worktree_are_not_discarded(catalogue: Catalogue, run: Run) -> None:
    _series(catalogue)
    path = catalogue.variant("p", TARGETS)
    assert run(catalogue.root, "build", "p").code == 0
    src = catalogue.home / "work" / "p" / "src" / "ggml" / "ggml.c"
    src.write_text(src.read_text() + "/* my experiment */\n")
    path.write_text(TARGETS + 'patches = ["kind"]\n')
    res = run(catalogue.root, "build", "p")
    assert res.code == 2 and "has local changes" in res.err
    assert "my experiment" in src.read_text()


def test_patch_pin_and_list(catalogue: Catalogue, run: Run) -> None:
    sdir = _series(catalogue)
    res = run(catalogue.root, "patch", "pin", "kind")
    assert res.code == 0 and "0001-ggml-kind-one.patch" in res.out
    text = (sdir / "series.toml").read_text()
    assert text.count("[sha256]") == 1 and 'status = "proposed"' in text
    assert run(catalogue.root, "patch", "pin", "kind").code == 0
    assert (sdir / "series.toml").read_text() == text  # idempotent
    rows = json.loads(run(catalogue.root, "patch", "list", "--json").out)
    assert rows[0]["series"] == "kind" and rows[0]["bench"] == ["barrier"]


def test_series_for_another_source_is_refused(catalogue: Catalogue, run: Run) -> None:
    catalogue.series("tmac", 'applies-to = ["t-mac"]\n')
    make_patch(
        catalogue.upstream.path,
        catalogue.root / "patches" / "tmac",
        name="x",
        old="return 0; }",
        new="return 3; }",
    )
    catalogue.variant("v", 'patches = ["tmac"]\n')
    res = run(catalogue.root, "build", "v")
    assert (
        res.code == 2
        and 'series "tmac" has no port for llama.cpp' in res.err
        and "it supports: t-mac" in res.err
    )


def test_users_git_config_cannot_change_or_break_the_commits(
    catalogue: Catalogue, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _series(catalogue)
    catalogue.variant("p", TARGETS + 'patches = ["kind"]\n')
    assert run(catalogue.root, "build", "p").code == 0
    wt = catalogue.home / "work" / "p" / "src"
    clean = git(wt, "rev-parse", "HEAD")
    # Someone's ~/.gitconfig: signed commits (no key here), Message-Id trailers, a hook that edits messages.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "applypatch-msg").write_text('#!/bin/sh\necho "Reviewed-by: a hook" >> "$1"\n')
    (hooks / "applypatch-msg").chmod(0o755)
    cfg = tmp_path / "user.gitconfig"
    cfg.write_text(
        f"[commit]\n\tgpgsign = true\n[am]\n\tmessageid = true\n[core]\n\thooksPath = {hooks}\n"
        "[apply]\n\twhitespace = error\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    catalogue.variant("q", TARGETS + 'patches = ["kind"]\n')
    res = run(catalogue.root, "build", "q")
    assert res.code == 0, res.err
    assert git(catalogue.home / "work" / "q" / "src", "rev-parse", "HEAD") == clean


def test_an_interrupted_git_am_is_recovered(catalogue: Catalogue, run: Run) -> None:
    sdir = _series(catalogue)
    path = catalogue.variant("p", TARGETS)
    assert run(catalogue.root, "build", "p").code == 0
    wt = catalogue.home / "work" / "p" / "src"
    # A build killed inside `git am`: stopped on a patch, its state left behind.
    bad = (sdir / "0001-ggml-kind-one.patch").read_text().replace("return 0; }", "return 5; }")
    (wt.parent / "stuck.patch").write_text(bad)
    stuck = subprocess.run(["git", "-C", str(wt), "am", str(wt.parent / "stuck.patch")], capture_output=True)
    assert stuck.returncode != 0 and _am_state(wt).exists()
    path.write_text(TARGETS + 'patches = ["kind"]\n')
    res = run(catalogue.root, "build", "p")
    assert res.code == 0, res.err
    assert "interrupted git am" in res.err and not _am_state(wt).exists()
    assert git(wt, "log", "-1", "--format=%s") == "ggml: kind one"


def test_a_patch_against_an_unknown_tree_names_the_file(catalogue: Catalogue, run: Run) -> None:
    """git says "sha1 information is lacking or useless (FILE)" when --3way has no blob to merge from."""
    sdir = catalogue.series("elsewhere")
    # Written on top of a commit the mirror never sees: its index line names a blob it lacks.
    up = catalogue.upstream.path
    git(up, "checkout", "-q", "-b", "tmp-elsewhere")
    (up / "ggml" / "ggml.c").write_text(
        (up / "ggml" / "ggml.c").read_text().replace("return 0; }", "return 4; }")
    )
    git(up, "commit", "-q", "-a", "-m", "not upstream")
    make_patch(up, sdir, name="on top", old="return 4; }", new="return 6; }")
    git(up, "checkout", "-q", "master")
    git(up, "branch", "-q", "-D", "tmp-elsewhere")
    catalogue.variant("p", TARGETS + 'patches = ["elsewhere"]\n')
    res = run(catalogue.root, "build", "p")
    assert res.code == 2, res.err
    assert "0001-ggml-on-top.patch" in res.err and "ggml/ggml.c" in res.err.split("does not apply")[1]
    assert "gave no file name" not in res.err
