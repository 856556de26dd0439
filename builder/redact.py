"""The one redaction of secrets: everything the tool records or shows goes through text().

Two rules, both applied by text():

- A URL's user information is a secret in two spellings: `user:password@` and, for a Redis
  store, the password alone (`redis://PASSWORD@host`, as ccache documents it), which looks
  like a user name. A password is shown as `***`, the user name (where there is one) is kept.
- A secret the tool knows it holds (the remote compile cache's password, registered with
  secret() when its URL is read) is hidden wherever it appears, URL-shaped or not: a program
  may print it in a form of its own (ccache's "Cannot parse URL" names the URL it was given).

Logs, manifests, error messages and wheel records are written with text().
"""

from __future__ import annotations

import re
from urllib.parse import unquote

HIDDEN = "***"
# scheme://userinfo@ : the user information runs to the LAST '@' of the URL, since a password
# may hold '/', '?', '#' or '@' unescaped (ccache refuses such a URL, and prints it whole when
# it does). Hiding a path's '@' by mistake costs a little of a log line; stopping early would
# show a password. A URL ends at whitespace or at '"', '<', '>', which no URL holds; a quote
# (') may be part of a password (a sub-delim), so it does not end one.
# The scheme is looked up behind each '://' (in a few characters), not matched in front of it:
# a scheme-shaped run tried at every offset of a long line would take quadratic time.
_USERINFO = re.compile(r"://(?P<userinfo>[^\s\"<>]*)@")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}\Z")
# Schemes whose lone user information is a login name, not a secret (ssh://git@host/repo).
_LOGIN_ONLY = frozenset({"ssh", "git+ssh", "ssh+git", "sftp", "git"})
# A user name shown in front of a hidden password: RFC 3986 user characters only. Anything
# else (a '/', an '@') means the split is a guess, and the whole user information is hidden.
_USER = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*")
# Registered secrets shorter than this are hidden in URLs only: replacing every "pw" or "1234"
# in a build log would blank ordinary words and numbers (and a secret that short is guessed
# in moments anyway).
MIN_SECRET = 5
_SECRETS: set[str] = set()


def secret(value: str) -> None:
    """Hide value (and its percent-decoded form) in everything text() redacts from now on."""
    for form in (value, unquote(value)):
        if len(form) >= MIN_SECRET:
            _SECRETS.add(form)


def forget() -> None:
    """Forget every registered secret (tests: a secret of one test is ordinary text in the next)."""
    _SECRETS.clear()


def _hide(value: str, m: re.Match[str]) -> str:
    userinfo = m["userinfo"]
    scheme = _SCHEME.search(value, max(0, m.start() - 31), m.start())
    user, colon, _ = userinfo.partition(":")
    if colon and _USER.fullmatch(user):
        return f"://{user}:{HIDDEN}@"
    if not userinfo or (scheme and scheme[0].lower() in _LOGIN_ONLY and _USER.fullmatch(userinfo)):
        return m[0]
    return f"://{HIDDEN}@"


def text(value: str) -> str:
    """value with every registered secret and the password of every URL in it hidden."""
    # Longest first: a secret that holds another is hidden whole.
    for known in sorted(_SECRETS, key=len, reverse=True):
        value = value.replace(known, HIDDEN)
    return _USERINFO.sub(lambda m: _hide(value, m), value)


def argv(args: list[str]) -> list[str]:
    """A command line fit to record: each argument redacted."""
    return [text(a) for a in args]
