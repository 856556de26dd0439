"""The compile cache: ccache's settings for a build, and its remote storage shared by every machine.

All variants share one local cache (see settings()). On top of it, ccache's remote storage
puts one cache behind every machine that builds the catalogue.

Configured once for the catalogue (`catalogue.toml`: `[ccache] remote = "redis://host:port"` or
`"http://host:port/path"`) or by the environment (`VARIANT_CCACHE_REMOTE`, which wins; `off`
disables). It is never part of a variant's hash: where a compile was cached changes nothing in
the binary.

The URL may hold a password (`redis://[[user:]password@]host`), so it never reaches a command
line: CMake would keep it in CMakeCache.txt and build.ninja, the build log and a failed
command's error would show it. It is written to a ccache config file of its own, 0600 in the
state folder's private/ (never in the cache folder, which CI uploads), and the launcher names
only that file (CCACHE_CONFIGPATH). That file replaces ccache's primary config
(<cache dir>/ccache.conf), so it carries that file's settings too. Everything recorded shows
the URL through redact.text(), and the password is registered with redact.secret(): hidden in
any output that holds it. A URL ccache could not parse is refused before a build (storeurl.py):
ccache would print it, password and all, on every compile.

A store that is down or slow never fails a build. ccache 4.7.5 itself falls back to the local
cache when a store refuses or drops connections (it counts a `remote_storage_error` and compiles),
measured here. But a store that accepts connections and never answers costs ccache its
operation timeout on every compile (10.1 s per compile at ccache's default of 10 s, measured),
so before a build the tool asks the store itself (a Redis PING, an HTTP HEAD) within the
configured timeouts; a store that does not answer is left out of that build, with a warning.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import redact
from .. import tomlfile as tf
from ..errors import SpecError, UserError
from ..layout import Layout
from . import storeurl

ENV = "VARIANT_CCACHE_REMOTE"
KEYS = ("remote", "connect-timeout", "operation-timeout")
SCHEMES = {"redis": 6379, "http": 80}
# ccache's own defaults are 100 ms and 10 s; a hung store would cost the latter on every compile.
CONNECT_MS = 500
OPERATION_MS = 5000
CONFIG_VAR = "CCACHE_CONFIGPATH"  # the launcher's one remote setting: the path of our config file
# Keys of ccache's config that say where the remote store is: ours replace the primary config's.
REMOTE_KEYS = ("remote_storage", "remote_only", "secondary_storage")


@dataclass(frozen=True)
class Remote:
    url: str  # as configured, without ccache's |attributes
    attributes: tuple[str, ...]  # ccache's "|key=value" attributes, ours included
    origin: str  # where it was configured: the file, or the environment variable
    connect_ms: int
    operation_ms: int
    parsed: storeurl.Url  # the URL's parts, as ccache reads them

    @property
    def storage(self) -> str:
        """ccache's remote_storage value: the URL (password and all) and the attributes."""
        return "|".join((self.url, *self.attributes))

    @property
    def shown(self) -> str:
        """The URL with any password hidden: for manifests, logs and warnings."""
        return redact.text(self.url)

    def config(self, primary: str) -> str:
        """Our ccache config file: the primary config's settings, then the remote store.

        remote_only false: hits from the store are copied into the local cache, and the local
        cache keeps serving when the store goes away in the middle of a build.
        """
        kept = [ln for ln in primary.splitlines() if ln.split("=", 1)[0].strip() not in REMOTE_KEYS]
        head = "# Written by variant for builds with the remote compile cache (0600: it holds the URL)."
        return "\n".join([head, *kept, f"remote_storage = {self.storage}", "remote_only = false", ""])


def config_path(home: Path, remote: Remote) -> Path:
    """Where a store's config file lives: named by the store's URL with its password hidden.

    Two stores used at once by two runs get two files. The name is on record (in the launcher,
    so in CMakeCache.txt and manifests): a digest of the password, or of attributes such as a
    token, would be a way to test guesses at them, so it leaves both out.
    """
    digest = hashlib.sha256(remote.shown.encode()).hexdigest()[:12]
    return home / "private" / f"ccache-remote-{digest}.conf"


def _parse(url: str, origin: str, where: Path | None, connect_ms: int, operation_ms: int) -> Remote:
    def bad(message: str) -> Exception:
        return SpecError(where, "ccache.remote", message) if where else UserError(f"{origin}: {message}")

    url = url.strip()
    if any(c.isspace() or not c.isprintable() for c in url):
        # It becomes one line of ccache's config file: a newline would add settings of its own.
        # Not shown: a password with a space in it would not be recognised, and so not hidden.
        raise bad("the URL holds whitespace or a control character (a URL has none)")
    base, *attrs = url.split("|")
    # Hidden from here on in everything logged or shown, whatever form a program prints it in.
    password = storeurl.password_of(base)
    if password:
        redact.secret(password)
    parts = storeurl.split(base, tuple(SCHEMES))
    if isinstance(parts, str):
        raise bad(f'"{redact.text(base)}": {parts}')
    names = {a.split("=", 1)[0] for a in attrs}
    ours = [f"connect-timeout={connect_ms}", f"operation-timeout={operation_ms}"]
    attributes = tuple(attrs) + tuple(a for a in ours if a.split("=", 1)[0] not in names)
    return Remote(base, attributes, origin, connect_ms, operation_ms, parts)


def load(config_file: Path) -> Remote | None:
    """The catalogue's remote compile cache: the environment first, then catalogue.toml."""
    data = tf.load(config_file) if config_file.is_file() else {}
    tf.check_keys(config_file, data, ("ccache", "models"))  # [models]: models/own.py reads it
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
    url = remote.parsed
    host, port = url.host, url.port or SCHEMES[url.scheme]
    connect_s, reply_s = remote.connect_ms / 1000, remote.operation_ms / 1000
    try:
        if url.scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=connect_s)
            try:
                conn.connect()
                assert conn.sock is not None
                conn.sock.settimeout(reply_s)
                conn.request("HEAD", url.path or "/")
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
        # Paths below the state folder are rewritten relative to the build folder, so a sibling
        # variant's worktree produces the same keys, and so does a dependency's prefix
        # (.variant/deps) in another catalogue: the remote cache serves T-MAC's fork too.
        ("CCACHE_BASEDIR", str(layout.home)),
        ("CCACHE_NOHASHDIR", "true"),
        # Depend mode takes the includes from the compiler's -MD output (Ninja
        # builds have it) instead of running the preprocessor a second time on
        # every miss: measured about 3% of a cold llama.cpp build. Hits come
        # from direct mode either way.
        ("CCACHE_DEPEND", "true"),
        # Not time_macros: with SOURCE_DATE_EPOCH a __DATE__ depends on the source commit, which
        # ccache would then leave out of the key (no file of llama.cpp or the forks uses one).
        ("CCACHE_SLOPPINESS", "include_file_mtime,include_file_ctime"),
        ("CCACHE_STATSLOG", str(layout.work(name) / "ccache-stats.log")),
        # The store's URL only through our config file (written by write_config before a build).
        *(((CONFIG_VAR, str(config_path(layout.home, remote))),) if remote else ()),
    )
    return env, remote


def write_config(env: tuple[tuple[str, str], ...], remote: Remote | None) -> Path | None:
    """Write the config file the launcher names (0600, atomically); None when the build has no store.

    Called before every configure and build: the file follows the store configured now and
    the primary config's settings (`ccache -M` writes max_size there) as they are now.
    """
    settings = dict(env)
    if remote is None or CONFIG_VAR not in settings:
        return None
    path = Path(settings[CONFIG_VAR])
    primary = Path(settings["CCACHE_DIR"]) / "ccache.conf" if "CCACHE_DIR" in settings else None
    text = remote.config(primary.read_text(errors="replace") if primary and primary.is_file() else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    if path.is_file() and path.stat().st_mode & 0o077 == 0 and path.read_text() == text:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def without_remote(env: tuple[tuple[str, str], ...], remote: Remote | None) -> tuple[tuple[str, str], ...]:
    """The environment with the local cache only (the remote store did not answer)."""
    return tuple((k, v) for k, v in env if not (remote and k == CONFIG_VAR))


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
