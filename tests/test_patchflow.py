"""The series round trip on fake upstreams: edit, refresh, rebase, check, revisions, export, status."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Catalogue, Outcome, write_sources
from .fakes import git, make_sdist, make_upstream
from .tools import need

Run = Callable[..., Outcome]
Edit = tuple[str, str, str, str]  # file, old, new, subject

ONE: Edit = ("ggml/ggml.c", "return 0; }", "return 1; }", "ggml : barrier kind one")
TWO: Edit = (
    "ggml/ggml.h",
    "int ggml_threads(void);",
    "int ggml_threads(void); /* two */\n" + "".join(f"int ggml_extra_{i}(void);\n" for i in range(8)),
    "ggml : mark two",
)
THREE: Edit = ("tools/llama-bench.c", "return 0;", "return 0; /* three */", "bench : mark three")
BREAK: Edit = ("ggml/ggml.h", "int ggml_threads(void);", "int ggml_threads(void)", "ggml : drop a semicolon")


def commit_edits(repo: Path, edits: list[Edit], author: str = "Kernel Hacker <hacker@example.org>") -> None:
    for file, old, new, subject in edits:
        path = repo / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
        body = f"Why: {subject} is what the test needs.\n\nSigned-off-by: {author}"
        git(repo, "commit", "-q", "-a", f"--author={author}", "-m", f"{subject}\n\n{body}")


def make_series(cat: Catalogue, name: str, upstream: Path, base: str, edits: list[Edit]) -> Path:
    """A series whose patches are consecutive commits on base (a clone of upstream, then format-patch)."""
    sdir = cat.series(
        name, f'description = "{name} for tests"\nstatus = "draft"\napplies-to = ["llama.cpp"]\n'
    )
    work = cat.root.parent / f"make-{name}"
    git(cat.root.parent, "clone", "-q", str(upstream), str(work))
    git(work, "checkout", "-q", "--detach", base)
    commit_edits(work, edits)
    git(work, "format-patch", "-q", "-o", str(sdir), f"{base}..HEAD")
    shutil.rmtree(work)
    return sdir


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_worktree(cat: Catalogue, name: str) -> Path:
    return cat.home / "series" / "llama.cpp" / name / "edit" / "src"


def test_edit_refresh_round_trip_is_lossless(catalogue: Catalogue, run: Run) -> None:
    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE, TWO])
    res = run(catalogue.root, "patch", "edit", "s")
    assert res.code == 0, res.err
    wt = Path(res.out.strip())
    assert wt == edit_worktree(catalogue, "s")
    log = git(wt, "log", "--format=%an|%s", f"{catalogue.upstream.commit}..HEAD")
    assert log.splitlines() == ["Kernel Hacker|ggml : mark two", "Kernel Hacker|ggml : barrier kind one"]
    # the first refresh writes the stable format (no commit id, no git version) and pins
    first = run(catalogue.root, "patch", "refresh", "s")
    assert first.code == 0 and "changed" in first.out, first.err
    assert "[sha256]" in (sdir / "series.toml").read_text()
    before = snapshot(sdir)
    assert b"From 0000000000000000000000000000000000000000 " in before["0001-ggml-barrier-kind-one.patch"]
    # edit -> refresh with no change: every byte stays, also from a fresh state folder (another machine)
    assert run(catalogue.root, "patch", "refresh", "s").out.strip() == "unchanged (2 patch file(s))"
    assert snapshot(sdir) == before
    shutil.rmtree(catalogue.home)
    assert run(catalogue.root, "patch", "edit", "s").code == 0
    assert run(catalogue.root, "patch", "refresh", "s").code == 0
    assert snapshot(sdir) == before
    # a real edit comes back as a changed patch file, re-pinned
    (wt / "ggml" / "ggml.h").write_text((wt / "ggml" / "ggml.h").read_text().replace("/* two */", "/* 2 */"))
    git(wt, "commit", "-q", "-a", "--amend", "--no-edit")
    res = run(catalogue.root, "patch", "refresh", "s")
    assert res.out.split() == ["changed", "0002-ggml-mark-two.patch"], res.out
    assert b"/* 2 */" in (sdir / "0002-ggml-mark-two.patch").read_bytes()
    assert run(catalogue.root, "patch", "list").code == 0  # the new pins hold


def test_refresh_refuses_uncommitted_work(catalogue: Catalogue, run: Run) -> None:
    make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE])
    wt = Path(run(catalogue.root, "patch", "edit", "s").out.strip())
    (wt / "ggml" / "ggml.c").write_text("/* half done */\n")
    res = run(catalogue.root, "patch", "refresh", "s")
    assert res.code == 2 and "uncommitted changes" in res.err


def test_a_forks_refresh_starts_its_own_port_and_leaves_the_top_level_files(
    catalogue: Catalogue, run: Run
) -> None:
    """The top-level files are applies-to's first source's port: an edit for a fork made from them
    and refreshed writes the fork's folder (it used to overwrite the upstream port)."""
    up = catalogue.upstream
    extra = f'["myfork"]\nurl = "{up.path}"\ncommit = "{up.commit}"\n'
    write_sources(catalogue.root, str(up.path), up.commit, extra)
    sdir = make_series(catalogue, "s", up.path, up.commit, [ONE])
    toml = sdir / "series.toml"
    both = 'applies-to = ["llama.cpp", "myfork"]'
    toml.write_text(toml.read_text().replace('applies-to = ["llama.cpp"]', both))
    top = snapshot(sdir)
    res = run(catalogue.root, "patch", "edit", "s", "--source", "myfork")
    assert res.code == 0, res.err
    wt = Path(res.out.strip())
    src = wt / "ggml" / "ggml.c"
    src.write_text(src.read_text().replace("return 1; }", "return 2; }"))
    git(wt, "commit", "-q", "-a", "--amend", "--no-edit")
    res = run(catalogue.root, "patch", "refresh", "s", "--source", "myfork")
    assert res.code == 0 and "a new port for myfork" in res.err, res.err
    patch = "0001-ggml-barrier-kind-one.patch"
    assert (sdir / patch).read_bytes() == top[patch]  # upstream's port untouched
    assert b"return 2; }" in (sdir / "myfork" / patch).read_bytes()
    assert f'"myfork/{patch}"' in toml.read_text()  # pinned as a port of its own
    from builder.patch import series as series_mod

    # the top level is applies-to's first source's; any other source without a folder gets its own
    assert series_mod.patch_folder(sdir, "llama.cpp") == sdir
    assert series_mod.patch_folder(sdir, "other") == sdir / "other"
    # an empty folder is where a new port goes, for applies-to's first source too
    (sdir / "llama.cpp").mkdir()
    assert series_mod.patch_folder(sdir, "llama.cpp") == sdir / "llama.cpp"


@pytest.fixture
def own_upstream(catalogue: Catalogue) -> tuple[Path, str]:
    """An upstream this test may add commits to (the session's fake upstream is shared)."""
    path = catalogue.root.parent / "own-upstream"
    commit = make_upstream(path)
    write_sources(catalogue.root, str(path), commit)
    return path, commit


def test_rebase_drops_the_upstreamed_patch_and_keeps_the_other(
    catalogue: Catalogue, run: Run, own_upstream: tuple[Path, str]
) -> None:
    up, base = own_upstream
    sdir = make_series(catalogue, "s", up, base, [ONE, TWO])
    assert run(catalogue.root, "patch", "edit", "s").code == 0
    # upstream merges patch 1 as it is (another committer), then moves on
    git(up, "am", "-q", str(sdir / "0001-ggml-barrier-kind-one.patch"))
    merged = git(up, "rev-parse", "HEAD")
    commit_edits(up, [("tools/test-barrier.c", "return 0;", "return 0; /* later */", "tests : later work")])
    new = git(up, "rev-parse", "HEAD")
    res = run(catalogue.root, "patch", "rebase", "s", "--onto", new)
    assert res.code == 0, res.err
    assert f"upstreamed  ggml : barrier kind one  <- {merged[:12]}" in res.out
    assert "[same patch-id]" in res.out
    assert "kept        ggml : mark two" in res.out
    assert sorted(p.name for p in sdir.glob("*.patch")) == ["0001-ggml-mark-two.patch"]
    wt = edit_worktree(catalogue, "s")
    assert git(wt, "log", "--format=%s", f"{new}..HEAD") == "ggml : mark two"
    assert git(wt, "rev-parse", "HEAD~1") == new
    assert run(catalogue.root, "patch", "list").code == 0  # re-pinned


def test_rebase_names_a_patch_merged_with_other_changes(
    catalogue: Catalogue, run: Run, own_upstream: tuple[Path, str]
) -> None:
    up, base = own_upstream
    sdir = make_series(catalogue, "s", up, base, [ONE, TWO])
    assert run(catalogue.root, "patch", "edit", "s").code == 0
    # upstream squashes patch 1 into a larger commit: no patch-id matches, git am finds nothing to do
    (up / "ggml" / "ggml.c").write_text("/* upstream's own change */" + (up / "ggml" / "ggml.c").read_text())
    commit_edits(up, [("ggml/ggml.c", "return 0; }", "return 1; }", "ggml : squashed work")])
    squashed = git(up, "rev-parse", "HEAD")
    res = run(catalogue.root, "patch", "rebase", "s", "--onto", squashed)
    assert res.code == 0, res.err
    assert f"upstreamed  ggml : barrier kind one  <- {squashed[:12]} 'ggml : squashed work'" in res.out
    assert "already there (git am)" in res.out
    assert sorted(p.name for p in sdir.glob("*.patch")) == ["0001-ggml-mark-two.patch"]


def test_rebase_conflict_exits_2_names_the_file_and_leaves_the_edit_worktree(
    catalogue: Catalogue, run: Run, own_upstream: tuple[Path, str]
) -> None:
    up, base = own_upstream
    sdir = make_series(catalogue, "s", up, base, [ONE, TWO])
    files_before = snapshot(sdir)
    assert run(catalogue.root, "patch", "edit", "s").code == 0
    commit_edits(up, [("ggml/ggml.h", "int ggml_threads(void);", "long ggml_threads(void);", "ggml : long")])
    res = run(catalogue.root, "patch", "rebase", "s", "--onto", git(up, "rev-parse", "HEAD"))
    assert res.code == 2, res.out + res.err
    assert "conflict in ggml/ggml.h" in res.err and "'ggml : mark two'" in res.err
    wt = edit_worktree(catalogue, "s")
    assert str(wt) in res.err and "am --continue" in res.err
    assert (Path(git(wt, "rev-parse", "--git-dir")) / "rebase-apply").is_dir()
    assert "<<<<<<<" in (wt / "ggml" / "ggml.h").read_text()
    assert snapshot(sdir) == files_before  # nothing half-written
    # refresh waits for the conflict to be resolved
    again = run(catalogue.root, "patch", "refresh", "s")
    assert again.code == 2 and "am --continue" in again.err


def test_check_names_the_patch_that_breaks_the_build(catalogue: Catalogue, run: Run) -> None:
    need("clang-format-19")
    fix = ("ggml/ggml.h", "int ggml_threads(void)\n", "int ggml_threads(void);\n", "ggml : restore it")
    make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE, BREAK, fix])
    catalogue.variant("big", 'targets = ["test-barrier", "llama-simple"]\npatches = ["s"]\n')
    catalogue.variant("small", 'targets = ["test-barrier"]\npatches = ["s"]\n')
    res = run(catalogue.root, "patch", "check", "s", "--json")
    assert res.code == 1, res.err
    report = json.loads(res.out)
    assert report["variant"] == "small"  # the cheapest carrier: fewest targets
    assert [p["ok"] for p in report["patches"]] == [True, False, True]
    builds = {c["check"]: c for c in report["patches"][1]["checks"]}["builds"]
    assert not builds["ok"] and "error" in builds["detail"]
    assert "patch(es) 2 failed" in res.err
    table = run(catalogue.root, "patch", "check", "s").out.splitlines()
    row2 = next(ln for ln in table if ln.startswith("2 "))
    assert row2.split()[2:4] == ["ok", "FAIL"]  # applies, builds


def test_check_flags_subject_body_and_whitespace(catalogue: Catalogue, run: Run) -> None:
    need("clang-format-19")
    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE])
    patch = sdir / "0001-ggml-barrier-kind-one.patch"
    text = patch.read_text().replace(
        "Subject: [PATCH] ggml : barrier kind one", "Subject: [PATCH] ggml: kind"
    )
    text = text.replace(
        "+int ggml_barrier_kind(void) { return 1; }", "+int ggml_barrier_kind(void) { return 1; }  "
    )
    body_start = text.index("Why:")
    text = text[:body_start] + text[text.index("Signed-off-by:") :]
    patch.write_text(text)
    catalogue.variant("v", 'targets = ["test-barrier"]\npatches = ["s"]\n')
    res = run(catalogue.root, "patch", "check", "s", "--json")
    assert res.code == 1, res.err
    checks = {c["check"]: c for c in json.loads(res.out)["patches"][0]["checks"]}
    assert checks["applies"]["ok"] and checks["builds"]["ok"]
    assert not checks["subject"]["ok"] and '"ggml : kind"' in checks["subject"]["detail"]
    assert not checks["body"]["ok"] and not checks["whitespace"]["ok"]


def test_range_diff_between_two_revisions_shows_the_changed_patch(catalogue: Catalogue, run: Run) -> None:
    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE, TWO])
    wt = Path(run(catalogue.root, "patch", "edit", "s").out.strip())
    assert run(catalogue.root, "patch", "refresh", "s").code == 0
    out1 = catalogue.root.parent / "pr1"
    res = run(catalogue.root, "patch", "export", "s", "--out", str(out1), "--no-tests")
    assert res.code == 0, res.err
    names = sorted(p.name for p in out1.glob("*.patch"))
    assert names == [
        "0000-cover-letter.patch",
        "0001-ggml-barrier-kind-one.patch",
        "0002-ggml-mark-two.patch",
    ]
    cover = (out1 / "0000-cover-letter.patch").read_text()
    assert "From: Kernel Hacker <hacker@example.org>" in cover
    assert "[PATCH 0/2] s for tests" in cover and f"base-commit: {catalogue.upstream.commit}" in cover
    assert "No stored run" in (out1 / "PR.md").read_text()
    # v2: patch 2 changes
    (wt / "ggml" / "ggml.h").write_text((wt / "ggml" / "ggml.h").read_text().replace("/* two */", "/* 2 */"))
    git(wt, "commit", "-q", "-a", "--amend", "--no-edit")
    assert run(catalogue.root, "patch", "refresh", "s").code == 0
    out2 = catalogue.root.parent / "pr2"
    assert run(catalogue.root, "patch", "export", "s", "--out", str(out2), "--no-tests").code == 0
    cover2 = (out2 / "v2-0000-cover-letter.patch").read_text()
    assert "[PATCH v2 0/2]" in cover2 and "Range-diff against v1:" in cover2
    assert sorted(p.name for p in (sdir / "revisions" / "llama.cpp").iterdir()) == ["v1", "v2"]
    res = run(catalogue.root, "patch", "diff", "s", "v1", "v2")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert any(" = " in ln and "ggml : barrier kind one" in ln for ln in lines), res.out
    assert any(" ! " in ln and "ggml : mark two" in ln for ln in lines), res.out
    assert "/* 2 */" in res.out and "/* two */" in res.out
    # an unchanged series re-exports as the same revision; the branch is in the mirror
    assert run(catalogue.root, "patch", "export", "s", "--out", str(out2), "--no-tests").code == 0
    assert sorted(p.name for p in (sdir / "revisions" / "llama.cpp").iterdir()) == ["v1", "v2"]
    mirror = catalogue.home / "mirrors" / "llama.cpp.git"
    head = subprocess.run(
        ["git", "--git-dir", mirror, "rev-parse", "refs/heads/s"], capture_output=True, text=True
    )
    assert git(wt, "rev-parse", "HEAD") != "" and head.stdout.strip()
    assert git(wt, "diff", head.stdout.strip(), "HEAD") == ""  # the pushed branch is the series


def test_range_diff_pairs_a_patch_rewritten_in_review_with_its_first_version(
    catalogue: Catalogue, run: Run
) -> None:
    """A v2 that rewrites most of a patch is shown as that patch changed (!), in the diff and in the
    cover letter, not as one patch dropped and another added (git's default creation factor)."""
    make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [TWO])
    wt = Path(run(catalogue.root, "patch", "edit", "s").out.strip())
    assert (
        run(
            catalogue.root, "patch", "export", "s", "--out", str(catalogue.root.parent / "v1"), "--no-tests"
        ).code
        == 0
    )
    header = wt / "ggml" / "ggml.h"
    text = header.read_text().replace("/* two */", "/* 2: the review's way */")
    lines = text.splitlines(keepends=True)
    extra = [i for i, ln in enumerate(lines) if "ggml_extra_" in ln]
    for i in extra:
        lines[i] = f"int ggml_pool_{i}(int n, int m); /* v2 */\n"
    header.write_text("".join(lines))
    git(wt, "commit", "-q", "-a", "--amend", "--no-edit")
    assert run(catalogue.root, "patch", "refresh", "s").code == 0
    out = catalogue.root.parent / "v2"
    assert run(catalogue.root, "patch", "export", "s", "--out", str(out), "--no-tests").code == 0
    res = run(catalogue.root, "patch", "diff", "s", "v1", "v2")
    assert res.code == 0, res.err
    first = res.out.splitlines()[0]
    assert " ! " in first and "ggml : mark two" in first, res.out
    assert "ggml_pool_" in res.out and "ggml_extra_" in res.out
    cover = (out / "v2-0000-cover-letter.patch").read_text()
    assert any(" ! " in ln and "ggml : mark two" in ln for ln in cover.splitlines()), cover


def test_status_is_kept_in_series_toml_and_listed(catalogue: Catalogue, run: Run) -> None:
    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE])
    url = "https://github.com/ggml-org/llama.cpp/pull/99999"
    res = run(catalogue.root, "patch", "status", "s", "--state", "open", "--pr", url)
    assert res.code == 0 and "[open]" in res.out, res.err
    text = (sdir / "series.toml").read_text()
    assert 'status      = "open"' in text and f'pr          = "{url}"' in text
    assert text.count("status") == 1
    rows = json.loads(run(catalogue.root, "patch", "list", "--json").out)
    assert rows[0]["pr"] == url and rows[0]["status"] == "open"
    assert run(catalogue.root, "patch", "status", "s", "--pr", "not a url").code == 2


def test_export_writes_pr_md_from_stored_runs(catalogue: Catalogue, run: Run) -> None:
    from builder.patch.series import read_patch
    from builder.store import results

    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE])
    patch = read_patch(next(sdir.glob("*.patch")))

    def manifest(variant: str, patched: bool, sha: str = patch.sha256) -> dict[str, object]:
        patches = [{"series": "s", "file": patch.path.name, "sha256": sha}] if patched else []
        return {"variant": variant, "hash": "h" * 64, "source": {"commit": "c" * 40}, "patches": patches}

    with results.connect(catalogue.home / "results.sqlite") as con:
        e2e = results.start_run(con, "default", "variant bench cand --vs base --suite e2e")
        for rep in range(3):
            for v, tps in (("base", 10.0 + rep), ("cand", 12.0 + rep)):
                params = {"threads": 2, "model": "wide", "n_prompt": 0, "n_gen": 32}
                m = results.Measurement("e2e", "tg_tps", "tokens/s", params, tps, better="higher")
                results.record(con, e2e, manifest(v, v == "cand"), rep, m)
        barrier = results.start_run(con, "default", "variant bench cand --vs base --suite barrier")
        for rep in range(3):
            for v, ns in (("base", 900.0 + rep), ("cand", 1000.0 - 200 * rep)):
                m = results.Measurement("barrier", "ns_per_node", "ns", {"threads": 4, "rounds": 20}, ns)
                results.record(con, barrier, manifest(v, v == "cand"), rep, m)
        stale = results.start_run(con, "default", "variant bench cand --vs base --suite barrier")
        m = results.Measurement("barrier", "ns_per_node", "ns", {"threads": 4, "rounds": 20}, 1.0)
        results.record(con, stale, manifest("cand", True, "0" * 64), 0, m)
    out = catalogue.root.parent / "pr"
    res = run(catalogue.root, "patch", "export", "s", "--out", str(out), "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["runs"] == [e2e, barrier]
    pr = (out / "PR.md").read_text()
    assert "| Model | Threads | Test | tokens/s base | tokens/s cand | Speedup | Verdict |" in pr
    assert "| wide | 2 | tg32 | 11 [10, 12] | 13 [12, 14] | 1.18 [1.17, 1.2] | faster |" in pr
    assert "| Threads | Rounds | ns base | ns cand | Speedup | Verdict |" in pr, pr
    assert "within noise" in pr  # 1000/900 vs 600/902: the pairs straddle 1.0
    assert f"Runs used: {e2e}, {barrier}" in pr
    assert (
        "variant bench cand --vs base --suite e2e" in pr and "git am 0001-ggml-barrier-kind-one.patch" in pr
    )
    assert "| THP |" in pr and "| Kernel |" in pr
    assert json.loads((out / ".variant-export.json").read_text())["runs"] == [e2e, barrier]


def test_check_stops_at_a_patch_that_does_not_apply(catalogue: Catalogue, run: Run) -> None:
    need("clang-format-19")
    sdir = make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE, TWO, THREE])
    bad = sdir / "0002-ggml-mark-two.patch"
    bad.write_text(bad.read_text().replace("-int ggml_threads(void);", "-int ggml_threadz(void);"))
    catalogue.variant("v", 'targets = ["test-barrier"]\npatches = ["s"]\n')
    res = run(catalogue.root, "patch", "check", "s", "--json")
    assert res.code == 1, res.err
    rows = json.loads(res.out)["patches"]
    assert [r["ok"] for r in rows] == [True, False, False]
    applies = [r["checks"][0] for r in rows]
    assert applies[1]["check"] == "applies" and "0002-ggml-mark-two.patch" in applies[1]["detail"]
    assert applies[2]["detail"] == "not tried" and len(rows[2]["checks"]) == 1


def test_check_of_a_port_with_a_variant_of_another_source_exits_2_and_says_why(
    catalogue: Catalogue, run: Run
) -> None:
    """A port checked with a variant built from another source (here one whose tree nests the
    port's source, as bitnet nests llama.cpp-bitnet) used to be applied to that other tree and
    reported as not applying; now it is refused before anything is fetched or built."""
    up = catalogue.upstream
    nest = (
        f'nested = {{ "3rdparty/fork" = "myfork" }}\n["myfork"]\nurl = "{up.path}"\ncommit = "{up.commit}"\n'
    )
    write_sources(catalogue.root, str(up.path), up.commit, nest)
    sdir = make_series(catalogue, "s", up.path, up.commit, [ONE])
    toml = sdir / "series.toml"
    toml.write_text(toml.read_text().replace('["llama.cpp"]', '["llama.cpp", "myfork"]'))
    catalogue.variant("v", 'targets = ["test-barrier"]\npatches = ["s"]\n')
    res = run(catalogue.root, "patch", "check", "s", "--source", "myfork", "--variant", "v")
    assert res.code == 2, res.err
    assert "variant v builds llama.cpp (its tree holds myfork at 3rdparty/fork/), not myfork" in res.err, (
        res.err
    )
    assert not (catalogue.home / "work" / ".check" / "myfork").exists()  # no worktree made


def test_an_offline_export_names_the_upstream_commit_not_the_local_import(
    catalogue: Catalogue, run: Run, tmp_path: Path, no_network_git: Path
) -> None:
    """Offline the base is the sdist's import commit, which no reviewer has: name the pinned one."""
    sdist = make_sdist(tmp_path / "dl" / "fake_pkg-1.0.tar.gz")
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    (catalogue.home / "downloads" / sha).mkdir(parents=True)
    shutil.copy(sdist, catalogue.home / "downloads" / sha / sdist.name)
    pinned = "ab" * 20
    pin = f'pypi = "fake-pkg==1.0"\nsubdir = "vendor/fake"\nsha256 = "{sha}"\n'
    write_sources(catalogue.root, "https://git.invalid/fake/llama.cpp", pinned, pin)
    make_series(catalogue, "s", catalogue.upstream.path, catalogue.upstream.commit, [ONE])
    out = catalogue.root.parent / "pr"
    res = run(catalogue.root, "patch", "export", "s", "--out", str(out), "--no-tests", "--offline", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["upstream_base"] == pinned and data["base"] != pinned
    assert f"base-commit: {pinned}\n" in (out / "0000-cover-letter.patch").read_text()
    pr = (out / "PR.md").read_text()
    assert f"on llama.cpp `{pinned}`" in pr and f"imported as `{data['base'][:12]}`" in pr
    assert f"git checkout {pinned}\n" in pr


def _store_pair(
    cat: Catalogue, base: str, cand: str, patch_file: Path, hardware: dict[str, Any] | None
) -> int:
    """A stored e2e run of cand (carrying patch_file's series at its current sha) against base."""
    from builder.patch.series import read_patch
    from builder.store import results

    patch = read_patch(patch_file)
    series = patch_file.parent.name
    with results.connect(cat.home / "results.sqlite") as con:
        run_id = results.start_run(con, "default", f"variant bench {cand} --vs {base}", hardware=hardware)
        for rep in range(2):
            for v, tps in ((base, 10.0 + rep), (cand, 12.0 + rep)):
                carried = (
                    [{"series": series, "file": patch.path.name, "sha256": patch.sha256}] if v == cand else []
                )
                manifest = {
                    "variant": v,
                    "hash": "h" * 64,
                    "source": {"commit": "c" * 40},
                    "patches": carried,
                }
                params = {"threads": 2, "model": "wide", "n_prompt": 0, "n_gen": 32}
                m = results.Measurement("e2e", "tg_tps", "tokens/s", params, tps, better="higher")
                results.record(con, run_id, manifest, rep, m)
    return run_id


def _section(pr: str, heading: str) -> str:
    """The text of PR.md's `## heading` section, up to the next `## ` heading."""
    return pr.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_export_runs_test_backend_ops_for_a_ggml_series_only_and_names_each_tables_cpu(
    catalogue: Catalogue, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.models.installed import Installed
    from builder.pr import backendops

    ran: list[str] = []
    check = backendops.check

    def counted(inst: Installed, say: Callable[[str], None]) -> backendops.Outcome:
        ran.append(inst.name)
        return check(inst, say)

    monkeypatch.setattr(backendops, "check", counted)
    up = catalogue.upstream
    ggml = next(make_series(catalogue, "g", up.path, up.commit, [ONE]).glob("*.patch"))
    tools = next(make_series(catalogue, "t", up.path, up.commit, [THREE]).glob("*.patch"))
    targets = 'targets = ["llama-simple", "test-barrier", "test-backend-ops"]\n'
    catalogue.variant("plain", targets)
    catalogue.variant("cand-g", targets + 'patches = ["g"]\n')
    catalogue.variant("cand-t", targets + 'patches = ["t"]\n')
    assert run(catalogue.root, "build", "plain", "cand-g", "cand-t").code == 0
    _store_pair(catalogue, "plain", "cand-g", ggml, {"cpu_model": "Test CPU 9000 @ 3.0GHz", "sockets": 1})
    _store_pair(catalogue, "plain", "cand-t", tools, None)  # a run from before the hardware record

    res = run(catalogue.root, "patch", "export", "g", "--out", str(catalogue.root.parent / "pr-g"), "--json")
    assert res.code == 0, res.err
    pr = (catalogue.root.parent / "pr-g" / "PR.md").read_text()
    assert ran == ["cand-g"]
    ops = pr.split("#### test-backend-ops\n", 1)[1].split("\n### ", 1)[0]
    assert f"`{backendops.COMMAND}` on `cand-g` (the series changes `ggml/`)" in ops
    assert "test -b CPU -o MUL_MAT," in backendops.COMMAND and "-j 2" in backendops.COMMAND
    # the fake upstream's test-backend-ops prints no count: shown as a failure, with its output
    assert "**FAILED: 0/0 tests passed** (exit code 0 after 0 s, but no 'N/M tests passed' line" in ops, ops
    assert "test-backend-ops ok kind=" in ops
    assert "`cand-g` vs `plain`, run 1; CPU: Test CPU 9000 @ 3.0GHz\n" in pr
    assert "CPU model  Test CPU 9000 @ 3.0GHz" in pr  # and the run's machine record says it too
    assert f"\n{backendops.COMMAND}\n" in _section(pr, "Additional information").split("### Reproduce")[1]

    res = run(catalogue.root, "patch", "export", "t", "--out", str(catalogue.root.parent / "pr-t"))
    assert res.code == 0, res.err
    pr = (catalogue.root.parent / "pr-t" / "PR.md").read_text()
    assert ran == ["cand-g"]  # a series that changes no ggml/ file does not run it
    assert "Not run: the series changes no file under `ggml/`." in pr and backendops.COMMAND not in pr
    assert "| test-barrier (cand-t) | ok |" in pr  # the smoke checks did run
    assert "`cand-t` vs `plain`, run 2; CPU: CPU not recorded\n" in pr


def test_backend_ops_counts_what_passed_and_names_what_failed(tmp_path: Path) -> None:
    from builder.models.installed import Installed
    from builder.pr import backendops

    def fake(out: str, code: int) -> Installed:
        folder = tmp_path / f"bin{code}-{len(out)}"
        folder.mkdir()
        script = folder / "test-backend-ops"
        script.write_text(f'#!/bin/sh\necho "$@" > {folder}/args\nprintf "{out}"\nexit {code}\n')
        script.chmod(0o755)
        return Installed("v", folder, {})

    inst = fake("Backend 1/1: CPU\\n  ADD(type=f32): OK\\n  12/12 tests passed\\n  Backend CPU: OK\\n", 0)
    good = backendops.check(inst, lambda _m: None)
    assert (good.ok, good.passed, good.total, good.failing) == (True, 12, 12, ())
    assert (inst.bin / "args").read_text().split() == list(backendops.ARGS)
    assert backendops.ARGS[:3] == ("test", "-b", "CPU")  # test mode needs -b CPU: CPU is skipped otherwise
    out = (
        "  10/12 tests passed\\n  Backend CPU: FAIL\\n\\nFailing tests:\\n  ADD(type=f16)\\n  ROPE(mode=2)\\n"
    )
    bad = backendops.check(fake(out + "1/1 backends passed\\n", 1), lambda _m: None)
    assert (bad.ok, bad.passed, bad.total, bad.failing) == (False, 10, 12, ("ADD(type=f16)", "ROPE(mode=2)"))
    assert bad.detail.startswith("exit code 1 after")
    crashed = backendops.check(fake("  ADD(type=f32): ", 134), lambda _m: None)
    assert not crashed.ok and crashed.total == 0 and "ADD(type=f32)" in crashed.tail
    missing = backendops.check(Installed("w", tmp_path, {}), lambda _m: None)
    assert not missing.ran and "w has no test-backend-ops" in missing.detail
    assert backendops.needed(["src/llama.cpp", "ggml/src/ggml-cpu/ggml-cpu.c"])
    assert not backendops.needed(["src/llama.cpp", "tools/ggml/x.c", "include/llama.h"])


def test_pr_title_is_in_llama_cpps_module_title_form() -> None:
    from builder.patch.check import SUBJECT
    from builder.patch.export import pr_title

    one, two = "ggml-cpu : spin, then sleep", "ggml : fall back without futex"
    assert (
        pr_title("a barrier that sleeps", (one,)) == one
    )  # one patch: its subject, whatever the description
    assert (
        pr_title("ggml-cpu, ggml : a barrier that sleeps", (one, two))
        == "ggml-cpu, ggml : a barrier that sleeps"
    )
    assert pr_title("a barrier that sleeps", (one, two)) == one  # not in the form: the first subject
    assert all(SUBJECT.match(t) for t in (one, pr_title("ggml : x", (one, two))))


TEMPLATE = """## Overview

<!-- What and why -->

## Additional information

<!-- Anything else -->

## Testing

```
## not a heading, inside a code block
```

## Requirements

- AI usage disclosure: <!-- mention: YES / NO - if yes, describe how AI was used -->
"""


def test_pr_md_follows_the_trees_template_and_leaves_its_requirements_to_the_author(
    catalogue: Catalogue, run: Run, tmp_path: Path
) -> None:
    from builder.pr import upstream

    up = tmp_path / "up"
    first = make_upstream(up)
    (up / ".github").mkdir()
    (up / ".github" / "pull_request_template.md").write_text(TEMPLATE)
    git(up, "add", ".github")
    git(up, "commit", "-q", "-m", "a template")
    write_sources(catalogue.root, str(up), git(up, "rev-parse", "HEAD"))
    sdir = make_series(catalogue, "s", up, git(up, "rev-parse", "HEAD"), [ONE, TWO])
    notes = "The barrier spins, then sleeps.\n\nMeasured on the authors' machines."
    toml = 'description = "ggml : barrier kinds"\nstatus = "draft"\nnotes = """\n' + notes + '\n"""\n'
    (sdir / "series.toml").write_text(toml)
    out = catalogue.root.parent / "pr"
    res = run(catalogue.root, "patch", "export", "s", "--out", str(out), "--no-tests", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["title"] == "ggml : barrier kinds"
    pr = (out / "PR.md").read_text()
    lines = pr.splitlines()
    assert lines[0] == "# ggml : barrier kinds" and lines[2] == "<!--"
    comment = pr[: pr.index("-->")]
    assert "the author writes or reviews that\nprose" in comment and "not accept PR descriptions" in comment
    assert "from `.github/pull_request_template.md` at" in comment
    assert [ln[3:] for ln in lines if ln.startswith("## ") and "inside a code block" not in ln] == [
        "Overview", "Additional information", "Testing", "Requirements"
    ]  # fmt: skip
    assert _section(pr, "Overview") == f"\n<!-- What and why -->\n\n<!-- series.toml, notes: -->\n{notes}\n"
    assert "\n## Testing\n\n```\n## not a heading, inside a code block\n```\n\n## Requirements\n" in pr
    # carried as the template has it: the disclosure is the author's to answer
    assert pr.endswith("\n## Requirements\n\n" + TEMPLATE.split("## Requirements\n\n")[1])
    assert "### Tests on the patched build" in _section(pr, "Additional information")
    # a tree without a template, or with one PR.md has no place in, gets the built-in copy
    assert "a built-in copy" in upstream.read(catalogue.home / "mirrors" / "llama.cpp.git", first).origin
    (up / ".github" / "pull_request_template.md").write_text("## Description\n\n<!-- fork's own -->\n")
    git(up, "commit", "-q", "-a", "-m", "a fork's template")
    fork = upstream.read(up / ".git", "HEAD")
    assert "has no single Overview and Additional information" in fork.origin
    assert fork == upstream.parse(upstream.BUILTIN, fork.origin)
    disclosure = "- AI usage disclosure: <!-- mention: YES / NO - if yes, describe how AI was used -->"
    assert disclosure in upstream.BUILTIN.splitlines()
