"""Patch series: git am --3way onto variant/<name>, rollback on failure, reuse when current."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from .conftest import Catalogue, Outcome
from .fakes import git, make_patch

Run = Callable[..., Outcome]
TARGETS = 'targets = ["test-barrier", "llama-simple"]\n'


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
    assert not (wt / ".git").is_dir() and "rebase-apply" not in git(wt, "status")
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
    assert res.code == 2 and 'applies to t-mac, not to source "llama.cpp"' in res.err
