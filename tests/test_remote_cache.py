"""ccache's remote storage through a real Redis server: shared between catalogues, never fatal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builder import redact
from builder import run as run_mod
from builder.ccache import ccache as remote
from builder.ccache import storeurl
from builder.errors import CommandError
from builder.layout import Layout
from builder.plan import plan as plan_mod
from builder.wheel import check as wheel_check
from builder.wheel import make as wheel_make
from builder.wheel.recipe import MANIFEST, Recipe

from . import fakes
from .conftest import REPO, Catalogue, Outcome, Redis, ccache_counters, free_port, write_sources
from .test_wheel_units import PIN as WHEEL_PIN
from .test_wheel_units import _sdist

Run = Callable[..., Outcome]
VARIANT = 'targets = ["test-barrier", "llama-simple"]\n'
EXTRA_SOURCES = 40


@pytest.fixture(scope="module")
def big_upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fake project with 40 more ggml sources: 46 compiles per build, enough for a ratio."""
    path = tmp_path_factory.mktemp("big") / "upstream"
    return path, fakes.make_upstream(path, extra_sources=EXTRA_SOURCES)


def _catalogue(root: Path, upstream: tuple[Path, str], remote_url: str | None) -> Path:
    (root / "variants").mkdir(parents=True)
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    write_sources(root, str(upstream[0]), upstream[1])
    (root / "variants" / "v.toml").write_text(VARIANT)
    if remote_url:
        (root / "catalogue.toml").write_text(f'[ccache]\nremote = "{remote_url}"\n')
    return root


def _manifest(root: Path, name: str = "v") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "dist" / name / "manifest.json").read_text())
    return data


def _stats_log_counters(root: Path, name: str = "v") -> tuple[int, int]:
    """(compiles, compiles served by the remote store), read from ccache's own per-build stats log."""
    blocks = (root / ".variant" / "work" / name / "ccache-stats.log").read_text().split("\n# ")
    compiles = [b for b in blocks if "cache_miss" in b or "cache_hit" in b]
    return len(compiles), sum("remote_storage_hit" in b for b in compiles)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("VARIANT_HOME", "VARIANT_ROOT", remote.ENV, "CCACHE_REMOTE_STORAGE", "CCACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """A password one test registers (redact.secret) is ordinary text in the next."""
    yield
    redact.forget()


def test_remote_store_serves_a_fresh_catalogue_and_a_dead_store_only_warns(
    tmp_path: Path, big_upstream: tuple[Path, str], redis_server: Redis, run: Run, clean_env: None
) -> None:
    a = _catalogue(tmp_path / "a", big_upstream, redis_server.url)
    res = run(a, "build", "v")
    assert res.code == 0, res.err
    ma = _manifest(a)
    assert ma["ccache"]["remote"] == {
        "url": redis_server.url,
        "from": str(a / "catalogue.toml"),
        "state": "used",
        "hits": 0,
        "errors": 0,
    }
    assert ma["ccache"]["misses"] >= EXTRA_SOURCES
    shutil.rmtree(a / ".variant" / "ccache")  # A's local cache is gone; the store keeps its copy

    b = _catalogue(tmp_path / "b", big_upstream, redis_server.url)
    res = run(b, "build", "v")
    assert res.code == 0, res.err
    mb = _manifest(b)
    compiles, remote_hits = _stats_log_counters(b)
    assert compiles >= EXTRA_SOURCES + 3  # ggml.c, the extras, two programs
    assert remote_hits / compiles >= 0.9, (remote_hits, compiles)
    assert mb["ccache"]["remote"]["hits"] == remote_hits and mb["ccache"]["hits"] == compiles
    # ccache's own counters of B's cache say the same
    counters = ccache_counters(b / ".variant" / "ccache")
    assert counters["remote_storage_hit"] == remote_hits
    assert mb["hash"] == ma["hash"]
    assert {x["name"]: x["sha256"] for x in mb["binaries"]} == {
        x["name"]: x["sha256"] for x in ma["binaries"]
    }

    # A third build that misses everything (another option), and Redis dies in the middle of it.
    c = _catalogue(tmp_path / "c", big_upstream, redis_server.url)
    (c / "variants" / "v.toml").write_text(VARIANT + "[cmake]\nGGML_OPENMP = false\n")
    stats_log = c / ".variant" / "work" / "v" / "ccache-stats.log"

    def kill_after_some_compiles() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if stats_log.is_file() and stats_log.read_text().count("# ") >= 5:
                break
            time.sleep(0.01)
        redis_server.kill()

    killer = threading.Thread(target=kill_after_some_compiles)
    killer.start()
    proc = subprocess.run(
        [sys.executable, "-m", "builder.cli", "--root", str(c), "build", "-j", "1", "v"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    killer.join()
    assert proc.returncode == 0, proc.stderr
    mc = _manifest(c)
    remote_state = mc["ccache"]["remote"]
    assert remote_state["state"] == "failed during the build" and remote_state["errors"] >= 1
    assert "warning: v: the remote compile cache" in proc.stderr and "local cache only" in proc.stderr
    assert (c / "dist" / "v" / "bin" / "test-barrier").is_file()


def _silent_server() -> tuple[socket.socket, threading.Thread]:
    """Accepts connections and never answers: a hung store."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_store_that_does_not_answer_is_left_out_with_a_warning(
    kind: str, catalogue: Catalogue, run: Run, clean_env: None
) -> None:
    srv = None
    if kind == "refused":
        url = f"redis://127.0.0.1:{free_port()}"
    else:
        srv, _ = _silent_server()
        url = f"redis://127.0.0.1:{srv.getsockname()[1]}"
    (catalogue.root / "catalogue.toml").write_text(
        f'[ccache]\nremote = "{url}"\nconnect-timeout = 200\noperation-timeout = 300\n'
    )
    catalogue.variant("v", VARIANT)
    try:
        res = run(catalogue.root, "build", "v")
    finally:
        if srv is not None:
            srv.close()
    assert res.code == 0, res.err
    assert f"warning: v: remote compile cache {url} does not answer" in res.err
    m = json.loads((catalogue.dist / "v" / "manifest.json").read_text())
    assert m["ccache"]["remote"]["state"] == "unreachable"
    # left out of the build itself: no compile waited for it
    assert remote.CONFIG_VAR not in " ".join(m["commands"]["configure"])
    assert not (catalogue.home / "private").exists()  # nor was its config file written
    assert m["ccache"]["remote_errors"] == 0 and m["ccache"]["misses"] >= 3


def test_remote_is_configured_once_never_hashed_and_never_on_a_command_line(
    catalogue: Catalogue, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue.variant("v", VARIANT)
    plain = json.loads(run(catalogue.root, "show", "--json", "v").out)
    assert remote.CONFIG_VAR not in " ".join(plain["configure"])
    (catalogue.root / "catalogue.toml").write_text(
        '[ccache]\nremote = "redis://user:s3cret@cache.example:6380"\n'
    )
    shared_out = run(catalogue.root, "show", "--json", "v").out
    shared = json.loads(shared_out)
    assert shared["hash"] == plain["hash"]
    plan = plan_mod.make(Layout.at(catalogue.root), "v")
    assert plan.remote is not None and plan.remote.origin == str(catalogue.root / "catalogue.toml")
    conf = remote.config_path(catalogue.home, plan.remote)
    # The launcher names the config file, and nothing of the store itself: not even its host.
    launcher = next(a for a in shared["configure"] if a.startswith("-DCMAKE_C_COMPILER_LAUNCHER="))
    assert f"{remote.CONFIG_VAR}={conf};ccache" in launcher and "cache.example" not in launcher
    assert "s3cret" not in shared_out + run(catalogue.root, "show", "v").out
    assert not conf.parent.exists()  # show writes nothing

    # What a build writes first: 0600 in a 0700 folder, beside (never in) the cache folder CI uploads,
    # and the primary config's own settings kept (ccache -M writes max_size there), ours replacing its store.
    (catalogue.home / "ccache").mkdir(parents=True)
    (catalogue.home / "ccache" / "ccache.conf").write_text("max_size = 7G\nremote_storage = http://stale:1\n")
    assert remote.write_config(plan.ccache_env, plan.remote) == conf
    assert conf.stat().st_mode & 0o777 == 0o600 and conf.parent.stat().st_mode & 0o777 == 0o700
    assert not conf.is_relative_to(catalogue.home / "ccache")
    shown = _ccache_config(dict(plan.ccache_env))
    assert shown["remote_storage"] == (
        str(conf),
        "redis://user:s3cret@cache.example:6380|connect-timeout=500|operation-timeout=5000",
    )
    assert shown["remote_only"] == (str(conf), "false") and shown["max_size"] == (str(conf), "7.0G")
    assert shown["cache_dir"] == ("environment", str(catalogue.home / "ccache"))

    # the environment wins over the file; "off" turns it off
    monkeypatch.setenv(remote.ENV, "http://other.example:8080/cache|layout=flat")
    env = plan_mod.make(Layout.at(catalogue.root), "v")
    assert env.remote is not None and env.remote.origin == remote.ENV
    assert (
        env.remote.storage
        == "http://other.example:8080/cache|layout=flat|connect-timeout=500|operation-timeout=5000"
    )
    assert remote.config_path(catalogue.home, env.remote) != conf  # two stores, two files
    assert json.loads(run(catalogue.root, "show", "--json", "v").out)["hash"] == plain["hash"]
    monkeypatch.setenv(remote.ENV, "off")
    assert remote.CONFIG_VAR not in " ".join(
        json.loads(run(catalogue.root, "show", "--json", "v").out)["configure"]
    )
    monkeypatch.delenv(remote.ENV)
    (catalogue.root / "catalogue.toml").write_text('[ccache]\nremote = "s3://bucket"\n')
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and "catalogue.toml: ccache.remote:" in res.err and "redis://" in res.err
    (catalogue.root / "catalogue.toml").write_text('[ccache]\nremote = "redis://h"\nconect-timeout = 5\n')
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and 'did you mean "connect-timeout"' in res.err


def _ccache_config(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """ccache's own view of its settings in env (`ccache --show-config`): key -> (origin, value)."""
    out = subprocess.run(
        ["ccache", "--show-config"], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    found = {}
    for line in out.stdout.splitlines():
        origin, _, setting = line.partition(") ")
        key, _, value = setting.partition(" = ")
        found[key] = (origin.removeprefix("("), value)
    return found


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:PASSWORD@cache.example:6380", "redis://user:***@cache.example:6380"),
        ("redis://PASSWORD@cache.example", "redis://***@cache.example"),  # ccache's password-only form
        ("redis://:PASSWORD@cache.example/2", "redis://:***@cache.example/2"),
        ("http://user:PASS@WORD@cache.example/c", "http://user:***@cache.example/c"),  # an unescaped '@'
        ("https://PASSWORD@github.com/o/r.git", "https://***@github.com/o/r.git"),  # a token
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),  # a login, not a secret
        ("redis://cache.example:6379", "redis://cache.example:6379"),
        # A password may hold what ends a URL's user information ('/', '?', '#', '@'): hidden up
        # to the last '@' all the same (ccache refuses such a URL, printing it whole).
        ("redis://p#w@cache.example", "redis://***@cache.example"),
        ("redis://user:p#w@cache.example", "redis://user:***@cache.example"),
        ("redis://u:p/w?x#y@z@cache.example:1", "redis://u:***@cache.example:1"),
        ("redis://pa/ss@cache.example", "redis://***@cache.example"),
        ("redis://u:SEC%RET@cache.example:1", "redis://u:***@cache.example:1"),  # no %XX
        ("redis://u:SEC{RET@cache.example:1", "redis://u:***@cache.example:1"),
        ("redis://u:SEC^RET@cache.example:", "redis://u:***@cache.example:"),
        ("redis://u:it's@cache.example", "redis://u:***@cache.example"),  # a quote is a sub-delim
        ("redis://u/x:pw@cache.example", "redis://***@cache.example"),  # no user name: all hidden
        ("ssh://g/it@github.com/o", "ssh://***@github.com/o"),
    ],
)
def test_redact_hides_a_password_in_both_of_ccaches_spellings(url: str, shown: str) -> None:
    assert redact.text(url) == shown
    launcher = f"-DL=/usr/bin/env;X={url}|connect-timeout=500;ccache"
    assert redact.text(launcher) == f"-DL=/usr/bin/env;X={shown}|connect-timeout=500;ccache"


def test_a_registered_secret_is_hidden_in_any_text_and_in_every_line_a_command_prints(
    tmp_path: Path,
) -> None:
    """ccache prints the URL it was given in its own words; a program may print a password bare."""
    redact.secret("S3cr%40t-x")  # as written in a URL, and as the store receives it (%40 is '@')
    assert redact.text("auth S3cr%40t-x, S3cr@t-x") == "auth ***, ***"
    redact.secret("pw12")  # too short to hide in ordinary text (it would blank words), hidden in URLs
    assert redact.text("pw123 redis://pw12@h") == "pw123 redis://***@h"
    log = tmp_path / "build.log"
    seen: list[str] = []
    # The secret is made by the child (not on its command line): its output alone holds it.
    say = "import sys; s = 'S3cr'; print(f'key {s}@t-x\\nin {s}%40t-x url', file=sys.STREAM); sys.exit(3)"
    with pytest.raises(CommandError) as live_error:
        run_mod.live(
            [sys.executable, "-c", say.replace("STREAM", "stdout")], log_file=log, on_line=seen.append
        )
    with pytest.raises(CommandError) as capture_error:
        run_mod.capture([sys.executable, "-c", say.replace("STREAM", "stderr")])
    assert seen == ["key ***", "in *** url"]
    assert "key ***\nin *** url\n[exit 3]" in log.read_text()
    for err in (live_error.value, capture_error.value):
        shown = str(err) + err.tail
        assert "S3cr@t" not in shown and "S3cr%40t" not in shown and "in *** url" in err.tail


def test_every_recorded_command_and_error_hides_the_password(
    tmp_path: Path, catalogue: Catalogue, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "build.log"
    fail = [sys.executable, "-c", "raise SystemExit(3)", "redis://PASSWORD@cache.example"]
    with pytest.raises(CommandError) as live_error:
        run_mod.live(fail, log_file=log)
    with pytest.raises(CommandError) as capture_error:
        run_mod.capture([*fail, "http://user:PASSWORD@cache.example/c"])
    for err in (live_error.value, capture_error.value):
        assert "PASSWORD" not in str(err) + " ".join(err.argv) and "redis://***@cache.example" in str(err)
    assert "PASSWORD" not in log.read_text() and "redis://***@cache.example" in log.read_text()

    # the configuration's own errors, for both spellings and both places it is configured
    catalogue.variant("v", VARIANT)
    monkeypatch.setenv(remote.ENV, "redis://PASSWORD@cache.example:63x9")
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and f"{remote.ENV}: " in res.err and "redis://***@cache.example:63x9" in res.err
    monkeypatch.delenv(remote.ENV)
    (catalogue.root / "catalogue.toml").write_text('[ccache]\nremote = "s3://user:PASSWORD@bucket"\n')
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and "s3://user:***@bucket" in res.err and "PASSWORD" not in res.err
    # A URL becomes one line of ccache's config file: a newline would add a setting (here a
    # command ccache runs before every compiler); whitespace is refused, and not echoed.
    monkeypatch.setenv(remote.ENV, "redis://PASS WORD@h\nprefix_command=touch /tmp/pwned")
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and "whitespace or a control character" in res.err and "WORD" not in res.err


# URLs ccache 4.7.5 cannot parse: it says so on every compile, URL and password and all.
UNPARSED = {
    "redis://u:SEC%RET@h:1": "%XX escapes",
    "redis://u:SEC%ZZRET@h:1": "%XX escapes",
    "redis://u:SEC{RET@h:1": "%XX escapes",
    "redis://u:SEC^RET@h:1": "%XX escapes",
    "redis://u:SEC@RET@h:1": "%XX escapes",
    "redis://u:SECRET@h:": "the port is not a number",
    "redis://u:SECRET@h:65536": "the port is not a number",
    "redis://u:SECRET@h:01": "the port is not a number",
    "redis://u:SECRET@h:1:2": "the port is not a number",
    "redis://user:SEC#RET@h": "the port is not a number",
    "redis://u:SECRET@[bad:1": "no IPv6 address",
    "redis://u:SECRET@[::1%25eth0]:1": "no IPv6 address",
    "redis://u:SECRET@h{x:1": "not a name or an address",
    "redis://u:SECRET@h%41:1": "not a name or an address",
    "redis://u:SECRET@:1": "no host",
    "http://u:SECRET@h:1/a{b": "path, query or fragment",
    "http://u:SECRET@h:1/a?x=%ZZ": "path, query or fragment",
    "http://u:SECRET@h/c#a#b": "path, query or fragment",
}
# ...and odd ones it parses: each character RFC 3986 allows, escapes, an address, no password.
PARSED = [
    "redis://u:SEC!$&'()*+,;=~._-RET@127.0.0.1:1",
    "redis://u:SEC%41RE:T@127.0.0.1:1/2",
    "redis://SECRET@[::1]:1",
    "redis://u:@127.0.0.1:1",
    "http://127.0.0.1:1/a:b@c?d/?e#f",
]


def _ccache_says(tmp_path: Path, url: str) -> str:
    """What ccache itself prints compiling one file with url as its remote storage."""
    (tmp_path / "a.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "c.conf").write_text(f"remote_storage = {url}\n")
    env = {"PATH": os.environ["PATH"], "CCACHE_CONFIGPATH": str(tmp_path / "c.conf")}
    argv = ["ccache", "gcc", "-c", "a.c", "-o", "a.o"]
    env["CCACHE_DIR"] = str(tmp_path / "d")
    out = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True)
    return out.stdout + out.stderr


@pytest.mark.parametrize("url", sorted(UNPARSED))
def test_a_url_ccache_cannot_parse_is_refused_without_echoing_its_password(
    url: str, tmp_path: Path, catalogue: Catalogue, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "Cannot parse URL" in _ccache_says(tmp_path, url)  # the refusal is ccache's own
    catalogue.variant("v", VARIANT)
    monkeypatch.setenv(remote.ENV, url)
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and f"error: {remote.ENV}: " in res.err and UNPARSED[url] in res.err, res.err
    assert "SEC" not in res.err and "RET" not in res.err, res.err
    monkeypatch.delenv(remote.ENV)
    (catalogue.root / "catalogue.toml").write_text(f"[ccache]\nremote = '{url}'\n")
    res = run(catalogue.root, "show", "v")
    assert res.code == 2 and "catalogue.toml: ccache.remote: " in res.err and "SEC" not in res.err


@pytest.mark.parametrize("url", PARSED)
def test_a_url_the_tool_takes_ccache_parses(url: str, tmp_path: Path) -> None:
    assert not isinstance(storeurl.split(url, tuple(remote.SCHEMES)), str)
    assert "Cannot parse URL" not in _ccache_says(tmp_path, url)


def test_a_failed_configure_shows_the_password_nowhere(
    catalogue: Catalogue, redis_server: Redis, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FAKE_DEP's find_package fails: configure stops after CMake has run the compiler checks
    # through the launcher and written its cache.
    catalogue.variant("v", VARIANT + "[cmake]\nFAKE_DEP = true\n")
    url = f"redis://user:{SECRET}@127.0.0.1:{redis_server.port}"
    monkeypatch.setenv(remote.ENV, url)
    res = run(catalogue.root, "build", "v")
    assert res.code == 1 and "FakeDep" in res.err, res.err
    assert SECRET not in res.out + res.err and f"{remote.CONFIG_VAR}=" in res.err
    work = catalogue.home / "work" / "v"
    assert (work / "build" / "CMakeCache.txt").is_file() and (work / "build.log").is_file()
    assert _holding(SECRET, catalogue.root) == {_config_of(catalogue.home)}


def test_a_password_ccache_cannot_parse_is_refused_before_the_build_and_shown_nowhere(
    catalogue: Catalogue, redis_server: Redis, run: Run, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue.variant("v", VARIANT)
    secret = "s3cret%ZZPASSWORD"  # '%' starts no %XX escape: ccache cannot parse the URL
    monkeypatch.setenv(remote.ENV, f"redis://user:{secret}@127.0.0.1:{redis_server.port}")
    res = run(catalogue.root, "build", "v")
    assert res.code == 2 and f"{remote.ENV}: " in res.err and "%XX" in res.err, res.err
    assert "PASSWORD" not in res.out + res.err
    work = catalogue.home / "work" / "v"
    assert not (work / "build.log").exists() and not (work / "build").exists()
    assert _holding("PASSWORD", catalogue.root) == set()  # not even our config file was written

    # Should the check ever miss a URL ccache refuses: ccache's "Cannot parse URL <the URL>" on
    # every compile reaches the error and build.log with the password hidden.
    split = storeurl.split
    monkeypatch.setattr(storeurl, "split", lambda url, schemes: split(url.replace("%ZZ", ""), schemes))
    res = run(catalogue.root, "build", "v")
    assert res.code == 1 and "ccache: error: Cannot parse URL redis://user:***@" in res.err, res.err
    assert "PASSWORD" not in res.out + res.err
    assert "Cannot parse URL redis://user:***@" in (work / "build.log").read_text()
    assert (work / "build" / "CMakeCache.txt").is_file()
    assert _holding("PASSWORD", catalogue.root) == {_config_of(catalogue.home)}


SECRET = "s3cret-PASSWORD-4711"


def _holding(secret: str, *folders: Path) -> set[Path]:
    """Every file under folders (symbolic links not followed) whose bytes hold secret."""
    return {
        Path(top) / name
        for folder in folders
        for top, _, files in os.walk(folder)
        for name in files
        if not (Path(top) / name).is_symlink() and secret.encode() in (Path(top) / name).read_bytes()
    }


def _config_of(home: Path) -> Path:
    """The one ccache config file of ours, checked 0600 (the one file allowed to hold the password)."""
    (found,) = (home / "private").iterdir()
    assert found.suffix == ".conf" and found.stat().st_mode & 0o777 == 0o600, oct(found.stat().st_mode)
    return found


def _require_auth(redis: Redis, user: str, password: str) -> None:
    """The store takes `user` with password, and its default user only with the same password."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as conn:
        for command in (
            ["ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all"],
            ["CONFIG", "SET", "requirepass", password],
        ):
            wire = f"*{len(command)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in command)
            conn.sendall(wire.encode())
            assert conn.recv(64).startswith(b"+OK"), command[:2]
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as conn:
        conn.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert conn.recv(64).startswith(b"-NOAUTH")  # the store really wants the password


def test_a_build_through_a_store_with_a_password_records_it_nowhere(
    tmp_path: Path,
    catalogue: Catalogue,
    redis_server: Redis,
    run: Run,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """issue 28's acceptance: after builds through a store with a password, only ccache's own 0600
    config holds it, not .variant/, dist/ or a wheel and its records. (The generated workflow reads
    no catalogue.toml setting, only the secret's name: tests/test_ci.py checks it.)"""
    _require_auth(redis_server, "user", SECRET)
    # A: `user:password@`, from the environment (as CI sets it)
    with_user = f"redis://user:{SECRET}@127.0.0.1:{redis_server.port}"
    monkeypatch.setenv(remote.ENV, with_user)
    catalogue.variant("v", VARIANT)
    res = run(catalogue.root, "build", "v")
    assert res.code == 0, res.err
    ma = json.loads((catalogue.dist / "v" / "manifest.json").read_text())
    assert ma["ccache"]["remote"] == {
        "url": f"redis://user:***@127.0.0.1:{redis_server.port}",
        "from": remote.ENV,
        "state": "used",
        "hits": 0,
        "errors": 0,
    }
    # B: ccache's password-only form, from catalogue.toml; its hits prove the password reached ccache
    monkeypatch.delenv(remote.ENV)
    alone = f"redis://{SECRET}@127.0.0.1:{redis_server.port}"
    b = _catalogue(tmp_path / "b", (catalogue.upstream.path, catalogue.upstream.commit), alone)
    res = run(b, "build", "v")
    assert res.code == 0, res.err
    mb = _manifest(b)
    assert mb["ccache"]["remote"]["url"] == f"redis://***@127.0.0.1:{redis_server.port}"
    assert mb["ccache"]["remote"]["errors"] == 0 and mb["ccache"]["remote"]["hits"] >= 3
    assert mb["ccache"]["remote"]["hits"] == mb["ccache"]["hits"]

    # A wheel of B through `variant wheel` itself: the staged sdist and the manifest it carries,
    # wheel.log, the wheel, <wheel>.json. Only llama-cpp-python's compile (pip) and the checks of
    # its libraries are stood in for; the stand-in packs the staged llama_cpp/ as the wheel would.
    sdist = _sdist(tmp_path / "llama_cpp_python-0.3.36.tar.gz")
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    (b / ".variant" / "downloads" / sha).mkdir(parents=True)
    shutil.copy(sdist, b / ".variant" / "downloads" / sha)
    write_sources(
        b, str(catalogue.upstream.path), catalogue.upstream.commit, WHEEL_PIN.replace("a" * 64, sha)
    )

    def pip_wheel(recipe: Recipe, dest: Path, log_file: Path) -> Path:
        dest.mkdir(parents=True)
        wheel = dest / f"llama_cpp_python-{recipe.version}-py3-none-linux_x86_64.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for file in sorted((recipe.staged / "llama_cpp").rglob("*")):
                zf.write(file, file.relative_to(recipe.staged))
        return wheel

    monkeypatch.setattr(wheel_make, "_pip_wheel", pip_wheel)
    monkeypatch.setattr(wheel_check, "run", lambda recipe, wheel, libs: ([], {"libraries": [], "forced": []}))
    res = run(b, "wheel", "v")
    assert res.code == 0, res.err
    (wheel,) = (b / "dist" / "wheels").glob("*.whl")
    record = json.loads(Path(f"{wheel}.json").read_text())
    with zipfile.ZipFile(wheel) as zf:
        carried = {name: zf.read(name) for name in zf.namelist()}
    staged = (b / ".variant" / "work" / "v.wheel" / "sdist" / "llama_cpp" / MANIFEST).read_bytes()
    assert carried[f"llama_cpp/{MANIFEST}"] == staged
    # The compile's command lines are recorded: where the URL went before its config file.
    for held in (record, json.loads(staged)):
        assert f"{remote.CONFIG_VAR}=" in " ".join(held["wheel"]["cmake_args"])
    assert [name for name, data in carried.items() if SECRET.encode() in data] == []

    assert _holding(SECRET, catalogue.root) == {_config_of(catalogue.home)}
    # B's catalogue.toml is where the user wrote it; what the tool wrote is what counts
    assert _holding(SECRET, b / ".variant", b / "dist") == {_config_of(b / ".variant")}
