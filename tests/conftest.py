from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder import cli

from . import fakes
from .tools import need

REPO = Path(__file__).resolve().parent.parent
SHIPPED_TARGETS = re.compile(r"^targets\s*=\s*\[[^\]]*\]\s*\n", re.M)


def shipped_variant(name: str, extra: str = "") -> str:
    """A shipped variant's spec with extra keys; a targets line in extra replaces the shipped one.

    The slow tests build only the targets they need; a key given twice is a TOML error.
    """
    path = REPO / "variants" / f"{name}.toml"
    text = path.read_text() if path.is_file() else ""
    if SHIPPED_TARGETS.search(extra):
        text = SHIPPED_TARGETS.sub("", text)
    return text + extra


@dataclass(frozen=True)
class Upstream:
    path: Path
    commit: str


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    """One fake upstream repo for the whole session (west-style); tests must not change it."""
    path = tmp_path_factory.mktemp("upstream") / "fake.git-src"
    return Upstream(path, fakes.make_upstream(path))


@dataclass(frozen=True)
class Catalogue:
    root: Path
    upstream: Upstream

    def variant(self, name: str, text: str) -> Path:
        path = self.root / "variants" / f"{name}.toml"
        path.write_text(text)
        return path

    def series(self, name: str, toml: str = 'description = "test series"\n') -> Path:
        d = self.root / "patches" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "series.toml").write_text(toml)
        return d

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def home(self) -> Path:
        return self.root / ".variant"


def write_sources(root: Path, url: str, commit: str, extra: str = "") -> None:
    (root / "sources.toml").write_text(f'["llama.cpp"]\nurl = "{url}"\ncommit = "{commit}"\n{extra}')


@pytest.fixture(autouse=True)
def quick_bandwidth_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `variant bench` probes the memory bandwidth (host/bandwidth.py) unless told not to: in tests
    a 64 MiB buffer (about 50 ms a thread count, after compiling the probe once per catalogue, about
    0.3 s), not gigabytes; benchmarks/bandwidth.py measures the real figures."""
    monkeypatch.setenv("VARIANT_BANDWIDTH_BYTES", str(64 << 20))


@pytest.fixture
def catalogue(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Catalogue:
    """A catalogue in tmp_path whose llama.cpp source is the fake upstream."""
    root = tmp_path / "cat"
    (root / "variants").mkdir(parents=True)
    (root / "patches").mkdir()
    shutil.copytree(REPO / "toolchains", root / "toolchains")
    write_sources(root, str(upstream.path), upstream.commit)
    monkeypatch.delenv("VARIANT_HOME", raising=False)
    monkeypatch.delenv("VARIANT_ROOT", raising=False)
    return Catalogue(root, upstream)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> Callable[..., Outcome]:
    """Run the CLI in-process, the way a user would, and collect exit code and output.

    Every command's exit code and output go into the test's report, shown when it fails:
    `assert run(...).code == 0` then says what the command printed, not only "1 == 0".
    """

    def _run(root: Path, *args: str) -> Outcome:
        capsys.readouterr()
        try:
            cli.main(["--root", str(root), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        request.node.add_report_section(
            "call",
            f"variant {shlex.join(args)} (exit {code})",
            f"--- stdout\n{captured.out[-4000:]}\n--- stderr\n{captured.err[-4000:]}",
        )
        return Outcome(code, captured.out, captured.err)

    return _run


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder: a program it runs that writes beside itself (llama.log,
    perf.data) writes there, never into the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_network_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty global git config, so the user's own settings cannot leak into tests."""
    cfg = tmp_path / "gitconfig"
    cfg.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield cfg


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    """Our own redis-server on 127.0.0.1 and a free port, no persistence, gone after the test.

    Missing, it is a failure under CI and a skip elsewhere (tests/tools.py): a test of the
    remote cache that silently does not run in CI would prove nothing.
    """
    exe = need("redis-server")
    folder = tmp_path / "redis"
    folder.mkdir()
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(folder), "--daemonize", "no", "--logfile", str(folder / "redis.log")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Redis(port, proc)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"redis-server did not start: {(folder / 'redis.log').read_text(errors='replace')}")
        time.sleep(0.05)
    yield server
    if proc.poll() is None:
        server.kill()


def ccache_counters(ccache_dir: Path) -> dict[str, int]:
    """ccache's own counters of a cache folder (`ccache --print-stats`), as the remote tests read them."""
    import os

    stats = subprocess.run(
        ["ccache", "--print-stats"],
        env={**os.environ, "CCACHE_DIR": str(ccache_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in stats.splitlines())}
