"""The compile cache: ccache's settings for a build, and its remote storage shared by every machine.

All variants share one local cache (see settings()). On top of it, ccache's remote storage
puts one cache behind every machine that builds the catalogue.

Configured once for the catalogue (`catalogue.toml`: `[ccache] remote = "redis://host:port"` or
`"http://host:port/path"`) or by the environment (`VARIANT_CCACHE_REMOTE`, which wins; `off`
disables). The URL reaches ccache through the CMake launcher's environment
(CCACHE_REMOTE_STORAGE) with short timeouts, is recorded in the manifest with any password
hidden, and is never part of a variant's hash: where a compile was cached changes nothing in
the binary.

A store that is down or slow never fails a build. ccache 4.7.5 itself falls back to the local
cache when a store refuses or drops connections (it counts a `remote_storage_error` and compiles),
measured here. But a store that accepts connections and never answers costs ccache its
operation timeout on every compile (10.1 s per compile at ccache's default of 10 s, measured),
so before a build the tool asks the store itself (a Redis PING, an HTTP HEAD) within the
configured timeouts; a store that does not answer is left out of that build, with a warning.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import tomlfile as tf
from ..errors import SpecError, UserError
from ..layout import Layout

ENV = "VARIANT_CCACHE_REMOTE"
KEYS = ("remote", "connect-timeout", "operation-timeout")
SCHEMES = {"redis": 6379, "http": 80}
# ccache's own defaults are 100 ms and 10 s; a hung store would cost the latter on every compile.
CONNECT_MS = 500
OPERATION_MS = 5000


@dataclass(frozen=True)
class Remote:
    url: str  # as configured, without ccache's |attributes
    attributes: tuple[str, ...]  # ccache's "|key=value" attributes, ours included
    origin: str  # where it was configured: the file, or the environment variable
    connect_ms: int
    operation_ms: int

    @property
    def storage(self) -> str:
        """The CCACHE_REMOTE_STORAGE value."""
        return "|".join((self.url, *self.attributes))

    @property
    def shown(self) -> str:
        """The URL with any password hidden: for manifests, logs and warnings."""
        return redact(self.url)

    def env(self) -> tuple[tuple[str, str], ...]:
        # remote_only false (ccache spells a false boolean CCACHE_NO<NAME>=true; "false" is an
        # error): hits from the store are copied into the local cache, and the local cache keeps
        # serving when the store goes away in the middle of a build.
        return (("CCACHE_REMOTE_STORAGE", self.storage), ("CCACHE_NOREMOTE_ONLY", "true"))


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}:***@" if parts.username else ":***@") + host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc))


def _parse(url: str, origin: str, where: Path | None, connect_ms: int, operation_ms: int) -> Remote:
    def bad(message: str) -> Exception:
        return SpecError(where, "ccache.remote", message) if where else UserError(f"{origin}: {message}")

    base, *attrs = url.strip().split("|")
    parts = urlsplit(base)
    if parts.scheme not in SCHEMES:
        schemes = " or ".join(f"{s}://" for s in SCHEMES)
        raise bad(f'"{redact(base)}": expected a {schemes} URL (ccache remote storage)')
    try:
        parts.port  # noqa: B018  (parsing the port validates it)
    except ValueError:
        raise bad(f'"{redact(base)}": the port is not a number') from None
    if not parts.hostname:
        raise bad(f'"{redact(base)}": no host')
    names = {a.split("=", 1)[0] for a in attrs}
    ours = [f"connect-timeout={connect_ms}", f"operation-timeout={operation_ms}"]
    attributes = tuple(attrs) + tuple(a for a in ours if a.split("=", 1)[0] not in names)
    return Remote(base, attributes, origin, connect_ms, operation_ms)


def load(config_file: Path) -> Remote | None:
    """The catalogue's remote compile cache: the environment first, then catalogue.toml."""
    data = tf.load(config_file) if config_file.is_file() else {}
    tf.check_keys(config_file, data, ("ccache",))
    table = tf.get_table(config_file, data, "ccache")
    tf.check_keys(config_file, table, KEYS, "ccache.")
    timeouts = []
    for key, default in (("connect-timeout", CONNECT_MS), ("operation-timeout", OPERATION_MS)):
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SpecError(config_file, f"ccache.{key}", "expected a positive integer (milliseconds)")
        timeouts.append(value)
    from_env = os.environ.get(ENV, "").strip()
    if from_env.lower() == "off":
        return None
    if from_env:
        return _parse(from_env, ENV, None, *timeouts)
    url = tf.get_str(config_file, table, "remote", "ccache.")
    return _parse(url, str(config_file), config_file, *timeouts) if url else None


def probe(remote: Remote) -> str | None:
    """None when the store answers within the timeouts, else what went wrong."""
    parts = urlsplit(remote.url)
    host, port = parts.hostname or "", parts.port or SCHEMES[parts.scheme]
    connect_s, reply_s = remote.connect_ms / 1000, remote.operation_ms / 1000
    try:
        if parts.scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=connect_s)
            try:
                conn.connect()
                assert conn.sock is not None
                conn.sock.settimeout(reply_s)
                conn.request("HEAD", parts.path or "/")
                conn.getresponse()  # any status: a server answered
            finally:
                conn.close()
            return None
        with socket.create_connection((host, port), timeout=connect_s) as sock:
            sock.settimeout(reply_s)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(64)
        # +PONG, or an error such as -NOAUTH: a Redis server answered; auth is ccache's business
        return None if reply[:1] in (b"+", b"-") else f"unexpected reply {reply[:20]!r}"
    except TimeoutError:
        return f"no answer within {remote.connect_ms} ms to connect and {remote.operation_ms} ms to reply"
    except (OSError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__


def settings(layout: Layout, name: str) -> tuple[tuple[tuple[str, str], ...], Remote | None]:
    """The launcher's ccache environment for a variant (empty without ccache), and the remote store."""
    if not shutil.which("ccache"):
        return (), None
    remote = load(layout.config_file)
    env = (
        ("CCACHE_DIR", str(layout.ccache_dir)),
        # Paths below the work root are rewritten relative to the build
        # folder, so a sibling variant's worktree produces the same keys.
        ("CCACHE_BASEDIR", str(layout.work_root)),
        ("CCACHE_NOHASHDIR", "true"),
        # Depend mode takes the includes from the compiler's -MD output (Ninja
        # builds have it) instead of running the preprocessor a second time on
        # every miss: measured about 3% of a cold llama.cpp build. Hits come
        # from direct mode either way.
        ("CCACHE_DEPEND", "true"),
        ("CCACHE_SLOPPINESS", "time_macros,include_file_mtime,include_file_ctime"),
        ("CCACHE_STATSLOG", str(layout.work(name) / "ccache-stats.log")),
        *(remote.env() if remote else ()),
    )
    return env, remote


def without_remote(env: tuple[tuple[str, str], ...], remote: Remote | None) -> tuple[tuple[str, str], ...]:
    """The environment with the local cache only (the remote store did not answer)."""
    drop = {k for k, _ in remote.env()} if remote else set()
    return tuple((k, v) for k, v in env if k not in drop)


def shown_argv(argv: list[str], remote: Remote | None) -> list[str]:
    """A command line with the remote store's password hidden: what manifests and show print."""
    if remote is None or remote.shown == remote.url:
        return argv
    return [a.replace(remote.url, remote.shown) for a in argv]


def check(remote: Remote, name: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Ask the store before a build; the record says whether it is used ("used"/"unreachable")."""
    record: dict[str, Any] = {"url": remote.shown, "from": remote.origin}
    problem = probe(remote)
    if problem is None:
        return {**record, "state": "used"}
    say(f"warning: {name}: remote compile cache {remote.shown} does not answer ({problem}); "
        "building with the local cache only")  # fmt: skip
    return {**record, "state": "unreachable", "problem": problem}


def outcome(
    record: dict[str, Any], counts: dict[str, Any], name: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """The record after the build, from its per-build statistics: remote hits, and errors if it went away."""
    if record["state"] != "used":
        return record
    errors = counts.get("remote_errors", 0)
    if errors:
        say(f"warning: {name}: the remote compile cache {record['url']} failed for {errors} "
            "compile(s) during the build (it went away?); those used the local cache only")  # fmt: skip
        record = {**record, "state": "failed during the build"}
    return {**record, "hits": counts.get("remote_hits", 0), "errors": errors}
