"""A published manifest read back (builder/publish/manifest.py): a damaged one is exit 2 naming the file
and the field, for every command that reads it, and a rebuild is the way out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.errors import SpecError, UserError
from builder.layout import Layout
from builder.publish import manifest
from builder.source import sources

from .conftest import Catalogue, Outcome

Run = Callable[..., Outcome]
Damage = Callable[[dict[str, Any]], Any]


def _as_list(m: dict[str, Any]) -> Any:
    return [m]


def _no_commit(m: dict[str, Any]) -> Any:
    del m["source"]["commit"]
    return m


def _hash_object(m: dict[str, Any]) -> Any:
    m["hash"] = {"sha256": m["hash"]}
    return m


def _env_key_with_equals(m: dict[str, Any]) -> Any:
    m["runtime"] = {"files": [], "env": {"A=B": "x"}}
    return m


def _patch_without_sha(m: dict[str, Any]) -> Any:
    m["patches"] = [{"series": "s", "file": "0001-x.patch"}]
    return m


# (damage, the field the error names)
DAMAGES: list[tuple[Damage, str]] = [
    (_as_list, "the manifest: expected a JSON object, found a list"),
    (_no_commit, "source.commit: expected a text, found nothing (the field is missing)"),
    (_hash_object, "hash: expected a text, found an object"),
    (_env_key_with_equals, "runtime.env.A=B: expected a variable name"),
    (_patch_without_sha, "patches[0].sha256: expected a text, found nothing"),
]


def test_smoke_and_bench_refuse_a_damaged_manifest_naming_the_file_and_field_and_a_rebuild_mends_it(
    catalogue: Catalogue, run: Run
) -> None:
    catalogue.variant("v", 'targets = ["llama-simple", "test-barrier"]\n')
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.out + res.err
    path = (catalogue.dist / "v" / "manifest.json").resolve()  # the folder dist/v links to
    whole = path.read_text()
    for damage, field in DAMAGES:
        path.write_text(json.dumps(damage(json.loads(whole))))
        for args in (("smoke", "v"), ("bench", "v", "--suite", "barrier", "--reps", "1", "--threads", "1")):
            res = run(catalogue.root, *args)
            assert res.code == 2, (args, field, res.out + res.err)
            assert f"{path}: {field}" in res.err, (args, res.err)
            assert "rebuild it (`variant build v`)" in res.err and "Traceback" not in res.err
    # `variant build` takes a damaged manifest as nothing built (it used to stop on it too): built anew
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.out + res.err
    assert "up to date" not in res.out + res.err
    res = run(catalogue.root, "bench", "v", "--suite", "barrier", "--reps", "1", "--threads", "1")
    assert res.code == 0, res.out + res.err


def _published(layout: Layout, name: str, data: Any) -> Path:
    folder = layout.dist / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder / "manifest.json"


def _whole(name: str) -> dict[str, Any]:
    return {
        "variant": name,
        "hash": "h" * 64,
        "source": {"name": "llama.cpp", "commit": "c" * 40, "origin": "git"},
        "toolchain": {"name": "gcc"},
        "binaries": [{"name": "llama-simple"}],
        "patches": [],
        "deps": [{"name": "t-mac", "worktree": None}],
        "runtime": {"files": [], "env": {"TMAC_KCFG_FILE": "/x/share/kcfg.ini"}},
    }


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("variant", "w", "variant: expected 'v' (it is published as dist/v), found the text \"w\""),
        ("source", None, "source: expected an object, found null"),
        ("binaries", {"llama-simple": 1}, "binaries: expected a list, found an object"),
        ("deps", [{"name": "t-mac", "worktree": 3}],
         "deps[0].worktree: expected a text or null, found the number 3"),
        ("runtime", {"env": {"K": "a\0b"}}, "runtime.env.K: expected a text without NUL bytes"),
        ("cmake", ["GGML_OPENMP"], "cmake: expected an object, found a list"),
    ],
)  # fmt: skip
def test_each_field_a_reader_uses_is_checked(tmp_path: Path, field: str, value: Any, named: str) -> None:
    layout = Layout.at(tmp_path)
    good = _published(layout, "good", _whole("good"))
    assert manifest.load(good, "good")["hash"] == "h" * 64
    path = _published(layout, "v", {**_whole("v"), field: value})
    with pytest.raises(UserError) as caught:
        manifest.read(layout, "v")
    assert str(caught.value).startswith(f"{path}: {named}"), str(caught.value)
    assert manifest.read(layout, "not-built") is None


def test_the_report_names_a_damaged_manifest_instead_of_a_traceback(tmp_path: Path) -> None:
    from builder.results import report
    from builder.store import results
    from builder.store.results import Measurement

    layout = Layout.at(tmp_path)
    with results.connect(layout.home / "results.sqlite") as con:
        run_id = results.start_run(con, "default", "variant bench v")
        results.record(con, run_id, _whole("v"), 0, Measurement("barrier", "ns", "ns", {}, 1.0))
    path = _published(layout, "v", {**_whole("v"), "source": {"name": "llama.cpp", "origin": "git"}})
    with pytest.raises(UserError, match=r"source\.commit: expected a text") as caught:
        report.write(layout, ["v"], tmp_path / "out", lambda _m: None)
    assert str(caught.value).startswith(str(path))


def test_a_runtime_env_name_that_no_program_can_be_given_is_refused_in_sources_toml(tmp_path: Path) -> None:
    """Else a build records it in the manifest, whose check then sends the user to rebuild, in vain."""
    file = tmp_path / "sources.toml"
    file.write_text(f'["llama.cpp"]\nurl = "x"\ncommit = "{"c" * 40}"\nruntime.env = {{ "A=B" = "x" }}\n')
    with pytest.raises(SpecError, match=r"llama\.cpp\.runtime\.env\.A=B: expected a variable name"):
        sources.load_all(file)
