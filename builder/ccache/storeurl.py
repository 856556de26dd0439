"""A remote compile cache URL checked the way ccache will read it (RFC 3986), before ccache sees it.

ccache refuses a URL it cannot parse on every compile with `ccache: error: Cannot parse URL
<the URL>`, the password included, into the build's output (build.log, a CommandError). So a
URL ccache 4.7.5 would refuse is refused here first, by the grammar of RFC 3986 that ccache's
parser follows: `%` only as a well-formed %XX escape, the user information of unreserved
characters, sub-delims and ':', a host that is a name or an address, a port of 1..65535 when
a ':' is there. Stricter than ccache in places (IPvFuture hosts, port 0), never looser: each
refusal below was seen from ccache 4.7.5 itself. Messages never hold the user information.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_UNRESERVED = r"A-Za-z0-9._~\-"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_USERINFO = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*")
_REG_NAME = re.compile(rf"[{_UNRESERVED}{_SUB_DELIMS}]+")  # ccache refuses %XX in a host
_IPV6 = re.compile(r"\[(?P<address>[0-9A-Fa-f:.]+)\]")  # no zone (%25eth0): ccache refuses one
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_PATH = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@/]|{_PCT})*")
_QUERY = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@/?]|{_PCT})*")  # a fragment too
# RFC 3986 appendix B: scheme, authority, path, query, fragment, by their delimiters alone.
_PARTS = re.compile(
    r"(?P<scheme>[^:/?#]+)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.S,
)
_REDIS_PATH = re.compile(r"(?:/[0-9]+)?")  # ccache's Redis store: a database number or nothing


@dataclass(frozen=True)
class Url:
    scheme: str
    userinfo: str | None  # None: no '@' in the authority
    host: str  # a name, or an IPv6 address without its brackets
    port: int | None
    path: str


def password_of(url: str) -> str | None:
    """The password a URL holds as ccache would split it, even in a URL split() refuses."""
    m = _PARTS.fullmatch(url)
    if m is None or "@" not in m["authority"]:
        return None
    user, colon, password = m["authority"].rpartition("@")[0].partition(":")
    return (password if colon else user) or None


def split(url: str, schemes: tuple[str, ...]) -> Url | str:
    """The URL's parts, or what is wrong with it (a message that names no part of the user information)."""
    m = _PARTS.fullmatch(url)
    if m is None or m["scheme"] not in schemes:
        names = " or ".join(f"{s}://" for s in schemes)
        return f"expected a {names} URL (ccache remote storage)"
    scheme, authority = m["scheme"], m["authority"]
    userinfo, at, hostport = authority.rpartition("@")
    if at and not _USERINFO.fullmatch(userinfo):
        return (
            "the user name or password holds a character a URL cannot carry as it is "
            "(RFC 3986: letters, digits, -._~!$&'()*+,;=: and %XX escapes, a '%' only as one): "
            "write the others as %XX"
        )
    ipv6 = _IPV6.match(hostport)
    if ipv6:
        host, rest = ipv6["address"], hostport[ipv6.end() :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the host in [] is not an IPv6 address"
    elif hostport.startswith("["):
        return "the host starts with '[' but is no IPv6 address in []"
    else:
        host, colon, port_text = hostport.partition(":")
        rest = colon + port_text
        if not host:
            return "no host"
        if not _REG_NAME.fullmatch(host):
            return "the host is not a name or an address"
    port = None
    if rest:
        port_text = rest.removeprefix(":")
        if not rest.startswith(":") or not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            return "the port is not a number from 1 to 65535 (a ':' needs one after it)"
        port = int(port_text)
    path = m["path"]
    if not _PATH.fullmatch(path) or not all(_QUERY.fullmatch(m[k] or "") for k in ("query", "fragment")):
        return "the path, query or fragment holds a character a URL cannot carry as it is (write it as %XX)"
    if scheme == "redis" and not (
        _REDIS_PATH.fullmatch(path) and m["query"] is None and m["fragment"] is None
    ):
        return "a redis:// URL ends with its port or a database number (/0, /1, ...)"
    return Url(scheme, userinfo if at else None, host, port, path)
