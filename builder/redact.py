"""The one redaction of secrets in URLs: everything the tool records goes through redact().

A URL's user information is a secret in two spellings: `user:password@` and, for a Redis
store, the password alone (`redis://PASSWORD@host`, as ccache documents it), which looks
like a user name. Logs, manifests, error messages and wheel records are written with
redact(): a password is shown as `***`, the user name (where there is one) is kept.
"""

from __future__ import annotations

import re

HIDDEN = "***"
# scheme://userinfo@ : the user information runs to the last '@' before the path, so a
# password holding an unescaped '@' is hidden whole. It stops at whitespace and quotes,
# which cannot be part of a URL, so text around a URL is left alone.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s\"'<>]*)@")
# Schemes whose lone user information is a login name, not a secret (ssh://git@host/repo).
_LOGIN_ONLY = frozenset({"ssh", "git+ssh", "ssh+git", "sftp", "git"})


def _hide(m: re.Match[str]) -> str:
    scheme, userinfo = m["scheme"], m["userinfo"]
    user, colon, _ = userinfo.partition(":")
    if colon:
        return f"{scheme}://{user}:{HIDDEN}@"
    if scheme.lower() in _LOGIN_ONLY or not userinfo:
        return m[0]
    return f"{scheme}://{HIDDEN}@"


def redact(text: str) -> str:
    """text with the password of every URL in it hidden (`user:***@`, or `***@` for a password alone)."""
    return _USERINFO.sub(_hide, text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line fit to record: each argument redacted."""
    return [redact(a) for a in argv]
